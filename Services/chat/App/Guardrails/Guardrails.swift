import Foundation
import InternalAPI

/// The tenant's guardrails applied to one exchange: blocked terms refuse a message before any
/// responder sees it; PII redaction takes emails, phone numbers and card numbers out of text
/// before it reaches a provider or a stored transcript.
struct Guardrails: Sendable {
    let blockedTerms: [String]
    let redactsPII: Bool

    init(_ config: AgentConfiguration.Guardrails) {
        self.blockedTerms = config.blockedTerms.map { $0.lowercased() }.filter { !$0.isEmpty }
        self.redactsPII = config.piiRedaction
    }

    /// The polite refusal sent instead of an answer when a message holds a blocked term.
    static let refusal = "I'm sorry, but I can't help with that topic. Is there anything else I can do for you?"

    /// The first blocked term `text` holds as a whole word or phrase (case-insensitive), if any.
    func blockedTerm(in text: String) -> String? {
        let words = Self.words(of: text.lowercased())
        let joined = " " + words.joined(separator: " ") + " "
        for term in blockedTerms {
            let needle = " " + Self.words(of: term).joined(separator: " ") + " "
            if needle.count > 2, joined.contains(needle) { return term }
        }
        return nil
    }

    /// `text` as it may leave the service or be stored: redacted when the tenant asked for it.
    func redact(_ text: String) -> String {
        redactsPII ? PIIRedactor.redact(text) : text
    }

    private static func words(of text: String) -> [Substring] {
        text.split(whereSeparator: { !($0.isLetter || $0.isNumber) })
    }
}

/// Finds and masks emails, phone numbers and payment card numbers (Luhn-checked, so an order
/// number of 16 digits is left alone).
enum PIIRedactor {
    static let emailMask = "[email]"
    static let phoneMask = "[phone]"
    static let cardMask = "[card]"

    private nonisolated(unsafe) static let email = try! Regex(#"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}"#)
    /// 13–19 digits, optionally grouped by single spaces or hyphens.
    private nonisolated(unsafe) static let cardCandidate = try! Regex(#"\b\d(?:[ \-]?\d){12,18}\b"#)
    /// An optional +country code, then 7–15 digits with spaces, dots, hyphens or parentheses between.
    private nonisolated(unsafe) static let phone = try! Regex(#"(?:\+\d{1,3}[ .\-]?|\b|(?=\())(?:\(\d{1,4}\)[ .\-]?)?\d(?:[ .\-]?\d){6,14}\b"#)

    static func redact(_ text: String) -> String {
        var result = text.replacing(email, with: emailMask)
        result = result.replacing(cardCandidate) { match in
            let candidate = String(match.output[0].substring ?? "")
            return luhnValid(candidate.filter(\.isNumber)) ? cardMask : candidate
        }
        result = result.replacing(phone) { match in
            let candidate = String(match.output[0].substring ?? "")
            return candidate.filter(\.isNumber).count >= 7 ? phoneMask : candidate
        }
        return result
    }

    /// The Luhn checksum of a digit string (payment card numbers pass it).
    static func luhnValid(_ digits: String) -> Bool {
        let values = digits.compactMap(\.wholeNumberValue)
        guard values.count >= 13, values.count == digits.count else { return false }
        var sum = 0
        for (index, value) in values.reversed().enumerated() {
            if index % 2 == 1 {
                let doubled = value * 2
                sum += doubled > 9 ? doubled - 9 : doubled
            } else {
                sum += value
            }
        }
        return sum % 10 == 0
    }
}
