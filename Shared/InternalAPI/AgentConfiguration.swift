import Foundation

/// A tenant's assistant as its admins configured it: tenancy's `GET /internal/agent-configs/{tenant_id}`
/// (for chat, which greets and answers with it) and the body of tenancy's admin agent-config routes.
package struct AgentConfiguration: Codable, Sendable, Equatable {
    /// What the assistant must not say or keep.
    package struct Guardrails: Codable, Sendable, Equatable {
        package var piiRedaction: Bool
        /// Trimmed, non-empty and distinct (compared case-insensitively).
        package var blockedTerms: [String]

        package init(piiRedaction: Bool, blockedTerms: [String]) {
            self.piiRedaction = piiRedaction
            self.blockedTerms = blockedTerms
        }
    }

    /// The tones an assistant can take.
    package enum Tone: String, Codable, Sendable, CaseIterable {
        case friendly, professional, casual, formal
    }

    /// Lower case, as the API writes ids.
    package var tenantId: String
    package var agentName: String
    package var tone: Tone
    package var greetingMessage: String
    /// 0.3 – 1.0.
    package var temperature: Double
    /// 50 – 2000.
    package var maxTokens: Int
    package var model: String
    /// Facts about the business the assistant may use (a JSON object the tenant defines).
    package var storeContext: [String: JSONValue]
    package var guardrailConfig: Guardrails
    package var updatedAt: Date
    /// Which of chat's responders answers for this tenant (`builtin`, `openai`); nil: chat's
    /// `CHAT_RESPONDER`. Added for chat's responders; an absent field reads as nil.
    package var responder: String?

    package init(
        tenantId: String, agentName: String, tone: Tone, greetingMessage: String, temperature: Double, maxTokens: Int, model: String,
        storeContext: [String: JSONValue], guardrailConfig: Guardrails, updatedAt: Date,
        responder: String? = nil
    ) {
        self.tenantId = tenantId
        self.agentName = agentName
        self.tone = tone
        self.greetingMessage = greetingMessage
        self.temperature = temperature
        self.maxTokens = maxTokens
        self.model = model
        self.storeContext = storeContext
        self.guardrailConfig = guardrailConfig
        self.updatedAt = updatedAt
        self.responder = responder
    }
}
