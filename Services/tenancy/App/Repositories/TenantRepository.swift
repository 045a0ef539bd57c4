import Foundation
import InternalAPI
import Logging
import PostgresNIO
import ServiceCore

struct Tenant: Sendable {
    var id: UUID
    var name: String
    var slug: String
    var status: String
    var rateLimitPerMinute: Int
    var createdAt: Date
    /// Whether people may sign up into the tenant by its slug (`POST /api/auth/signup`); off by default.
    var allowSignup = false
    /// The registration attempt that made it (nil for tenants made otherwise).
    var registrationID: UUID? = nil
    /// Origins whose pages may start widget sessions; empty: any.
    var allowedOrigins: [String] = []
    /// The tenant's settings language (ISO 639-1; `en` until set), for chat's knowledge-base text search.
    var language = "en"
}

struct OnboardingProgress: Sendable, Codable, Equatable {
    var stepAccountCreated: Bool
    var stepEmailVerified: Bool
    var stepBrandingUploaded: Bool
    var stepKnowledgeBaseUploaded: Bool
    var stepAgentConfigured: Bool
    var stepWidgetTested: Bool
    var stepPaymentCompleted: Bool
}

struct AgentConfig: Sendable {
    var agentName: String
    var tone: String
    var greetingMessage: String
}

protocol TenantRepository: Sendable {
    /// Reserves a unique slug derived from `slugBase` with a tenant in `provisioning` state.
    func createProvisioning(name: String, slugBase: String, rateLimitPerMinute: Int, registrationID: UUID?, logger: Logger) async throws -> Tenant
    /// Finishes registration: onboarding progress, default agent, status `active`, in one transaction.
    func activate(_ tenant: Tenant, agent: AgentConfig, logger: Logger) async throws
    func delete(_ id: UUID, logger: Logger) async throws
    /// Tenants that finished registration (never `provisioning` ones).
    func find(slug: String, logger: Logger) async throws -> (Tenant, AgentConfig)?
    func find(id: UUID, logger: Logger) async throws -> (Tenant, AgentConfig)?
    /// Tenants still `provisioning` that were created before `cutoff`: registrations that died half-way.
    func abandonedProvisioning(before cutoff: Date, limit: Int, logger: Logger) async throws -> [Tenant]
    /// Policies of registered tenants changed after (`since`, `after`), in that order.
    /// Tenants changed after (`since`, Unix µs, and `after`), oldest change first.
    func policies(changedAfter since: Int64, id after: UUID, limit: Int, logger: Logger) async throws -> [TenantPolicy]
}

struct PostgresTenantRepository: TenantRepository {
    let client: Database

    func policies(changedAfter since: Int64, id after: UUID, limit: Int, logger: Logger) async throws -> [TenantPolicy] {
        // The microseconds go in as an integer: a `Date` parameter is truncated to the microsecond
        // below, so the last row of a page would come back on the next one.
        let rows = try await client.query(
            """
            SELECT id, status, rate_limit_per_minute, updated_at, allowed_origins FROM tenants
            WHERE (updated_at, id) > (TIMESTAMPTZ 'epoch' + \(since) * INTERVAL '1 microsecond', \(after)) AND status <> 'provisioning'
            ORDER BY updated_at, id LIMIT \(limit)
            """,
            logger: logger
        )
        return try rows.decode((UUID, String, Int, Date, [String]).self).map { id, status, limit, updated, origins in
            TenantPolicy(
                tenantId: id.uuidString.lowercased(), status: status, rateLimitPerMinute: limit, updatedAt: updated, allowedOrigins: origins
            )
        }
    }

    func createProvisioning(name: String, slugBase: String, rateLimitPerMinute: Int, registrationID: UUID?, logger: Logger) async throws -> Tenant {
        for attempt in 0..<6 {
            let slug = attempt == 0 ? slugBase : "\(slugBase.prefix(40))-\(Slug.randomSuffix())"
            let id = UUID()
            do {
                let rows = try await client.query(
                    """
                    INSERT INTO tenants (id, name, slug, status, rate_limit_per_minute, registration_id)
                    VALUES (\(id), \(name), \(slug), 'provisioning', \(rateLimitPerMinute), \(registrationID))
                    RETURNING created_at
                    """,
                    logger: logger
                )
                for createdAt in try rows.decode(Date.self) {
                    return Tenant(
                        id: id, name: name, slug: slug, status: "provisioning", rateLimitPerMinute: rateLimitPerMinute, createdAt: createdAt,
                        registrationID: registrationID
                    )
                }
            } catch where error.isUniqueViolation {
                continue
            }
        }
        throw AppError.conflict("Could not find a free account slug; choose another account name", code: "SLUG_TAKEN")
    }

    func activate(_ tenant: Tenant, agent: AgentConfig, logger: Logger) async throws {
        try await client.transaction(logger: logger) { connection in
            try await connection.query(
                """
                INSERT INTO onboarding_progress (id, tenant_id, step_account_created) VALUES (\(UUID()), \(tenant.id), true)
                """,
                logger: logger
            )
            try await connection.query(
                """
                INSERT INTO agent_configs (tenant_id, agent_name, tone, greeting_message)
                VALUES (\(tenant.id), \(agent.agentName), \(agent.tone), \(agent.greetingMessage))
                """,
                logger: logger
            )
            try await connection.query(
                "UPDATE tenants SET status = 'active', updated_at = now() WHERE id = \(tenant.id)",
                logger: logger
            )
        }
    }

    func delete(_ id: UUID, logger: Logger) async throws {
        try await client.query("DELETE FROM tenants WHERE id = \(id)", logger: logger)
    }

    private static let selectTenant = """
        SELECT t.id, t.name, t.slug, t.status, t.rate_limit_per_minute, t.created_at, a.agent_name, a.tone, a.greeting_message,
            t.allow_signup, t.allowed_origins, COALESCE(ts.settings->>'language', 'en')
        FROM tenants t JOIN agent_configs a ON a.tenant_id = t.id LEFT JOIN tenant_settings ts ON ts.tenant_id = t.id
        """

    func find(slug: String, logger: Logger) async throws -> (Tenant, AgentConfig)? {
        try await first(client.query("\(unescaped: Self.selectTenant) WHERE t.slug = \(slug) AND t.status <> 'provisioning'", logger: logger))
    }

    func find(id: UUID, logger: Logger) async throws -> (Tenant, AgentConfig)? {
        try await first(client.query("\(unescaped: Self.selectTenant) WHERE t.id = \(id) AND t.status <> 'provisioning'", logger: logger))
    }

    func abandonedProvisioning(before cutoff: Date, limit: Int, logger: Logger) async throws -> [Tenant] {
        let rows = try await client.query(
            """
            SELECT id, name, slug, rate_limit_per_minute, created_at, registration_id FROM tenants
            WHERE status = 'provisioning' AND created_at < \(cutoff)
            ORDER BY created_at LIMIT \(limit)
            """,
            logger: logger
        )
        var tenants: [Tenant] = []
        for (id, name, slug, limit, created, registrationID) in try rows.decode((UUID, String, String, Int, Date, UUID?).self) {
            tenants.append(
                Tenant(
                    id: id, name: name, slug: slug, status: "provisioning", rateLimitPerMinute: limit, createdAt: created,
                    registrationID: registrationID
                )
            )
        }
        return tenants
    }

    private func first(_ rows: QueryRows) throws -> (Tenant, AgentConfig)? {
        for (id, name, slug, status, limit, created, agentName, tone, greeting, allowSignup, origins, language) in try rows.decode(
            (UUID, String, String, String, Int, Date, String, String, String, Bool, [String], String).self
        ) {
            return (
                Tenant(
                    id: id, name: name, slug: slug, status: status, rateLimitPerMinute: limit, createdAt: created, allowSignup: allowSignup,
                    allowedOrigins: origins, language: language
                ),
                AgentConfig(agentName: agentName, tone: tone, greetingMessage: greeting)
            )
        }
        return nil
    }
}
