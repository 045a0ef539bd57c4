import Foundation

/// Canonical form of a request path, checked and forwarded by the gateway, so that
/// `/api/auth/%2e%2e/%2e%2e/internal/x` or `//internal` cannot sneak past the route rules.
enum PathNormalizer {
    /// Percent-decodes, merges repeated slashes and resolves `.`/`..`; nil for paths that cannot be
    /// made sane (bad escapes, NUL, backslashes, or `..` above the root).
    static func normalize(_ rawPath: String) -> String? {
        if isPlain(rawPath) { return rawPath }
        guard rawPath.hasPrefix("/"), let decoded = rawPath.removingPercentEncoding else { return nil }
        if decoded.contains("\0") || decoded.contains("\\") || decoded.contains("%") && decoded.removingPercentEncoding != decoded {
            return nil
        }
        var segments: [Substring] = []
        for segment in decoded.split(separator: "/", omittingEmptySubsequences: true) {
            switch segment {
            case ".": continue
            case "..":
                guard !segments.isEmpty else { return nil }
                segments.removeLast()
            default: segments.append(segment)
            }
        }
        let joined = "/" + segments.joined(separator: "/")
        return decoded.hasSuffix("/") && joined != "/" ? joined + "/" : joined
    }

    /// The common case, checked in one pass over the bytes: already canonical (no escapes, no empty,
    /// `.` or `..` segments, no backslash or NUL), so it needs no work.
    static func isPlain(_ path: String) -> Bool {
        var previous: UInt8 = 0
        var first = true
        for byte in path.utf8 {
            if first {
                guard byte == 0x2F else { return false }
                first = false
            }
            switch byte {
            case 0x25, 0x5C, 0x00: return false  // % \ NUL
            case 0x2F where previous == 0x2F: return false  // //
            case 0x2E where previous == 0x2F: return false  // a segment starting with '.'
            default: break
            }
            previous = byte
        }
        return !first
    }

    /// True for `/internal` and anything under it, whatever the case.
    static func isInternal(_ normalizedPath: String) -> Bool {
        let lower = normalizedPath.lowercased()
        return lower == "/internal" || lower.hasPrefix("/internal/")
    }

    /// The normalised path, percent-encoded again for the upstream request line.
    static func encodeForUpstream(_ normalizedPath: String) -> String {
        // Nearly every path needs no escaping; checking its bytes skips Foundation on the hot path.
        if normalizedPath.utf8.allSatisfy({ needsNoEscaping[Int($0)] }) { return normalizedPath }
        return normalizedPath.addingPercentEncoding(withAllowedCharacters: upstreamAllowed) ?? normalizedPath
    }

    private static let upstreamAllowed: CharacterSet = {
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove(charactersIn: "?#%;")
        return allowed
    }()

    /// ASCII bytes `upstreamAllowed` keeps as they are: unreserved characters, `/`, and the
    /// sub-delimiters RFC 3986 allows in a path apart from `;`.
    private static let needsNoEscaping: [Bool] = (0..<256).map { byte in
        guard byte < 128, let scalar = Unicode.Scalar(byte) else { return false }
        return (scalar.properties.isAlphabetic && scalar.isASCII) || ("0"..."9").contains(scalar) || "-._~/!$&'()*+,=:@".unicodeScalars.contains(scalar)
    }
}
