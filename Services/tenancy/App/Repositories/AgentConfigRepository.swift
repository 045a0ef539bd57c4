import Foundation
import InternalAPI
import Logging
import PostgresNIO
import ServiceCore

/// What became of a change to a tenant's agent configuration.
enum AgentConfigUpdateOutcome: Sendable {
    case updated(AgentConfiguration)
    /// No registered tenant has the id: nothing changed.
    case notFound
    /// The change names another model and the caller may not choose models: nothing changed.
    case modelNotAllowed
}

protocol AgentConfigRepository: Sendable {
    /// The agent of a registered tenant (never a `provisioning` one).
    func find(tenantID: UUID, logger: Logger) async throws -> AgentConfiguration?
    /// Applies `change` and marks the tenant's onboarding step `agent_configured`, in one transaction.
    func update(tenantID: UUID, change: AgentConfigChange, mayChooseModel: Bool, logger: Logger) async throws -> AgentConfigUpdateOutcome
}

struct PostgresAgentConfigRepository: AgentConfigRepository {
    let client: Database

    private static let columns = """
        a.tenant_id, a.agent_name, a.tone, a.greeting_message, a.temperature, a.max_tokens, a.model, a.store_context::text,
        a.pii_redaction, a.blocked_terms, a.updated_at, a.responder
        """

    func find(tenantID: UUID, logger: Logger) async throws -> AgentConfiguration? {
        let rows = try await client.query(
            """
            SELECT \(unescaped: Self.columns) FROM agent_configs a JOIN tenants t ON t.id = a.tenant_id
            WHERE a.tenant_id = \(tenantID) AND t.status <> 'provisioning'
            """,
            logger: logger
        )
        return try rows.rows.first.map(Self.configuration)
    }

    func update(tenantID: UUID, change: AgentConfigChange, mayChooseModel: Bool, logger: Logger) async throws -> AgentConfigUpdateOutcome {
        try await client.transaction(logger: logger) { connection in
            // The row is locked, so the model compared is the one the update replaces.
            let current = try await connection.query(
                """
                SELECT a.model FROM agent_configs a JOIN tenants t ON t.id = a.tenant_id
                WHERE a.tenant_id = \(tenantID) AND t.status <> 'provisioning' FOR UPDATE OF a
                """,
                logger: logger
            )
            var model: String?
            for try await value in current.decode(String.self) { model = value }
            guard let model else { return .notFound }
            if let wanted = change.model, wanted != model, !mayChooseModel { return .modelNotAllowed }
            let updated = try await connection.query(
                """
                UPDATE agent_configs a SET
                    agent_name = COALESCE(\(change.agentName), a.agent_name),
                    tone = COALESCE(\(change.tone?.rawValue), a.tone),
                    greeting_message = COALESCE(\(change.greetingMessage), a.greeting_message),
                    temperature = COALESCE(\(change.temperature), a.temperature),
                    max_tokens = COALESCE(\(change.maxTokens), a.max_tokens),
                    model = COALESCE(\(change.model), a.model),
                    store_context = COALESCE(CAST(\(change.storeContext) AS jsonb), a.store_context),
                    pii_redaction = COALESCE(\(change.piiRedaction), a.pii_redaction),
                    blocked_terms = COALESCE(\(change.blockedTerms), a.blocked_terms),
                    responder = CASE WHEN \(change.responderChanged) THEN \(change.responder) ELSE a.responder END,
                    updated_at = clock_timestamp()
                WHERE a.tenant_id = \(tenantID)
                RETURNING \(unescaped: Self.columns)
                """,
                logger: logger
            )
            var configuration: AgentConfiguration?
            for try await row in updated { configuration = try Self.configuration(row) }
            try await OnboardingSteps.mark(.agentConfigured, tenantID: tenantID, on: connection, logger: logger)
            return configuration.map(AgentConfigUpdateOutcome.updated) ?? .notFound
        }
    }

    private static func configuration(_ row: PostgresRow) throws -> AgentConfiguration {
        let (tenantID, name, tone, greeting, temperature, maxTokens, model, context, pii, terms, updatedAt, responder) = try row.decode(
            (UUID, String, String, String, Double, Int, String, String, Bool, [String], Date, String?).self
        )
        return AgentConfiguration(
            tenantId: tenantID.uuidString.lowercased(), agentName: name, tone: AgentConfiguration.Tone(rawValue: tone) ?? .friendly, greetingMessage: greeting,
            temperature: temperature, maxTokens: maxTokens, model: model,
            storeContext: (try? JSONCoding.decoder.decode([String: JSONValue].self, from: Data(context.utf8))) ?? [:],
            guardrailConfig: .init(piiRedaction: pii, blockedTerms: terms), updatedAt: updatedAt, responder: responder
        )
    }
}
