import Foundation
import ServiceCore

/// The rules for emails and passwords (seed 000: at least 8 characters with an upper-case
/// letter, a lower-case letter and a digit; and, as OWASP ASVS asks, none of the most common
/// passwords). Lengths count Unicode scalars, as JSON Schema's
/// `minLength`/`maxLength` do, so the documented contract and the check agree.
enum CredentialPolicy {
    static func normalizedEmail(_ raw: String) -> String {
        raw.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
    }

    static func emailProblems(_ email: String) -> [String] {
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        guard email.unicodeScalars.count <= 254, parts.count == 2, !parts[0].isEmpty, parts[1].contains("."),
            !parts[1].hasPrefix("."), !parts[1].hasSuffix("."),
            !email.contains(where: { $0.isWhitespace || $0 == "," || $0 == ";" }),
            // And one the mail outbox takes (plain ASCII, no quoting): an account whose verification
            // or invitation mail could not be written would fail the request that makes it.
            (try? MailAddress(address: email)) != nil
        else {
            return ["must be a valid email address"]
        }
        return []
    }

    static let maxFullNameLength = 200

    /// What is wrong with a full name (already trimmed); an absent or empty one is fine here.
    static func fullNameProblems(_ fullName: String?) -> [String] {
        guard let fullName, fullName.unicodeScalars.count > maxFullNameLength else { return [] }
        return ["must be at most \(maxFullNameLength) characters"]
    }

    /// Long enough for any passphrase; the bound keeps hashing work per request small.
    static let maxPasswordLength = 128

    static func passwordProblems(_ password: String) -> [String] {
        var problems: [String] = []
        let scalars = password.unicodeScalars
        if scalars.count < 8 { problems.append("must be at least 8 characters") }
        if scalars.count > maxPasswordLength { problems.append("must be at most \(maxPasswordLength) characters") }
        // ASCII classes, as the documented pattern has them (JSON Schema regexes have no Unicode classes).
        if !scalars.contains(where: { ("A"..."Z").contains($0) }) { problems.append("must contain an upper-case letter") }
        if !scalars.contains(where: { ("a"..."z").contains($0) }) { problems.append("must contain a lower-case letter") }
        if !scalars.contains(where: { ("0"..."9").contains($0) }) { problems.append("must contain a digit") }
        if problems.isEmpty, CommonPasswords.contains(password) { problems.append("is one of the most common passwords; choose another") }
        return problems
    }
}
