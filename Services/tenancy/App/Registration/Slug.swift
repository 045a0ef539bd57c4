import Foundation

/// URL-safe tenant identifiers: lower-case ASCII letters, digits and single dashes.
enum Slug {
    static let maxLength = 48

    /// `"Café Olé & Co."` → `"cafe-ole-co"`; falls back to `"account"` when nothing usable is left.
    static func make(from text: String) -> String {
        let folded = text.folding(options: [.diacriticInsensitive, .caseInsensitive, .widthInsensitive], locale: Locale(identifier: "en_US_POSIX"))
            .lowercased()
        var slug = ""
        var pendingDash = false
        for scalar in folded.unicodeScalars {
            let isAlphanumeric = (scalar >= "a" && scalar <= "z") || (scalar >= "0" && scalar <= "9")
            if isAlphanumeric {
                if pendingDash && !slug.isEmpty { slug.append("-") }
                slug.unicodeScalars.append(scalar)
                pendingDash = false
            } else {
                pendingDash = true
            }
            if slug.count >= maxLength { break }
        }
        while slug.hasSuffix("-") { slug.removeLast() }
        return slug.isEmpty ? "account" : slug
    }

    static func randomSuffix() -> String {
        let alphabet = Array("abcdefghijkmnpqrstuvwxyz23456789")
        return String((0..<5).map { _ in alphabet.randomElement()! })
    }

    static func isValid(_ slug: String) -> Bool {
        !slug.isEmpty && slug.count <= maxLength + 6 && slug == make(from: slug)
    }
}
