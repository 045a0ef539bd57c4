import Crypto
import Foundation
import HTTPTypes

/// A strong entity tag for a representation, and the `If-None-Match` comparison of RFC 9110 §13.1.2
/// (weak comparison: `W/"x"` matches `"x"`; `*` matches any current representation).
struct EntityTag: Sendable, Equatable {
    /// The opaque part, without quotes.
    let opaque: String

    /// The tag of `bytes`: a SHA-256 prefix, so the same body always has the same tag.
    init(of bytes: some Sequence<UInt8>) {
        let digest = SHA256.hash(data: Array(bytes))
        opaque = digest.prefix(16).map { String(format: "%02x", $0) }.joined()
    }

    init(opaque: String) {
        self.opaque = opaque
    }

    /// As sent in `ETag`.
    var header: String { "\"\(opaque)\"" }

    /// Whether a request's `If-None-Match` names this representation, so the answer is 304.
    /// A header that cannot be parsed names nothing (the full answer is sent).
    func matches(ifNoneMatch field: String?) -> Bool {
        guard let field else { return false }
        let trimmed = field.trimmingCharacters(in: .whitespaces)
        if trimmed == "*" { return true }
        guard let tags = Self.parseList(trimmed) else { return false }
        return tags.contains(opaque)
    }

    /// The opaque parts of a `#entity-tag` list, or nil when it is malformed.
    static func parseList(_ field: String) -> [String]? {
        var tags: [String] = []
        var rest = Substring(field)
        while true {
            rest = rest.drop { $0 == " " || $0 == "\t" || $0 == "," }
            if rest.isEmpty { return tags }
            if rest.hasPrefix("W/") { rest = rest.dropFirst(2) }
            guard rest.first == "\"" else { return nil }
            rest = rest.dropFirst()
            guard let close = rest.firstIndex(of: "\"") else { return nil }
            let opaque = rest[..<close]
            // etagc is %x21 / %x23-7E / obs-text: no spaces, no control characters.
            guard opaque.unicodeScalars.allSatisfy({ $0.value == 0x21 || (0x23...0x7E).contains($0.value) || $0.value >= 0x80 }) else {
                return nil
            }
            tags.append(String(opaque))
            rest = rest[rest.index(after: close)...]
            rest = rest.drop { $0 == " " || $0 == "\t" }
            guard rest.isEmpty || rest.first == "," else { return nil }
        }
    }
}
