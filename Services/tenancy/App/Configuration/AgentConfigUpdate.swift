import Foundation
import InternalAPI
import ServiceCore

/// `PUT /api/admin/tenants/{tenant_id}/agent-config` (seed 000's `AgentConfigUpdate`): every field
/// optional; absent or `null` leaves it as it is.
struct AgentConfigUpdate: Decodable, Sendable {
    struct Guardrails: Decodable, Sendable {
        var piiRedaction: Bool
        var blockedTerms: [String]
    }

    var agentName: String?
    var tone: String?
    var greetingMessage: String?
    var temperature: Double?
    var storeContext: [String: JSONValue]?
    var model: String?
    var maxTokens: Double?
    var guardrailConfig: Guardrails?
    /// chat's responder for this tenant: `builtin`, `openai`, or `default` (chat's `CHAT_RESPONDER`).
    var responder: String?

    static let temperatureRange = 0.3...1.0
    static let maxTokensRange = 50...2000
    static let maxBlockedTerms = 200
    static let maxBlockedTermLength = 100

    /// The change to store, checked and normalised; 422 naming every bad field.
    func validated() throws -> AgentConfigChange {
        var rules = FieldRules()
        var change = AgentConfigChange()
        change.agentName = rules.text(agentName, "agent_name", max: 100)
        change.tone = rules.oneOf(tone, "tone", as: AgentConfiguration.Tone.self)
        change.greetingMessage = rules.text(greetingMessage, "greeting_message", max: 1000)
        change.temperature = rules.within(temperature, "temperature", Self.temperatureRange)
        change.maxTokens = rules.wholeNumber(maxTokens, "max_tokens", Self.maxTokensRange)
        change.storeContext = rules.flatObject(storeContext, "store_context")
        if let model = model?.trimmingCharacters(in: .whitespacesAndNewlines) {
            if Self.isModelName(model) {
                change.model = model
            } else {
                rules.add("model", "must be 1-100 letters, digits and . _ : / - (starting with a letter or digit)")
            }
        }
        if let guardrails = guardrailConfig {
            change.blockedTerms = Self.blockedTerms(guardrails.blockedTerms, rules: &rules)
            change.piiRedaction = guardrails.piiRedaction
        }
        if let responder {
            if responder == "default" {
                change.responderChanged = true
            } else if ["builtin", "openai"].contains(responder) {
                change.responderChanged = true
                change.responder = responder
            } else {
                rules.add("responder", "must be builtin, openai or default")
            }
        }
        try rules.finish()
        return change
    }

    /// Trimmed, non-empty, bounded, and each kept once (the first spelling of terms equal but for case).
    static func blockedTerms(_ terms: [String], rules: inout FieldRules) -> [String] {
        let field = "guardrail_config.blocked_terms"
        if terms.count > maxBlockedTerms { rules.add(field, "must list at most \(maxBlockedTerms) terms") }
        var seen: Set<String> = []
        var kept: [String] = []
        for (index, term) in terms.prefix(maxBlockedTerms).enumerated() {
            guard let trimmed = rules.text(term, "\(field).\(index)", max: maxBlockedTermLength) else { continue }
            if seen.insert(trimmed.lowercased()).inserted { kept.append(trimmed) }
        }
        return kept
    }

    static func isModelName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...100).contains(bytes.count), let first = bytes.first, first.isASCIIAlphanumeric else { return false }
        return bytes.allSatisfy { $0.isASCIIAlphanumeric || [UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: ":"), UInt8(ascii: "/"), UInt8(ascii: "-")].contains($0) }
    }
}

/// A checked change to a tenant's agent configuration: nil fields stay as they are.
struct AgentConfigChange: Sendable, Equatable {
    var agentName: String?
    var tone: AgentConfiguration.Tone?
    var greetingMessage: String?
    var temperature: Double?
    var maxTokens: Int?
    var model: String?
    /// JSON text of an object.
    var storeContext: String?
    var piiRedaction: Bool?
    var blockedTerms: [String]?
    /// Whether `responder` is to be stored (nil then means chat's default).
    var responderChanged = false
    var responder: String?
}

extension UInt8 {
    fileprivate var isASCIIAlphanumeric: Bool {
        (0x30...0x39).contains(self) || (0x41...0x5A).contains(self) || (0x61...0x7A).contains(self)
    }
}
