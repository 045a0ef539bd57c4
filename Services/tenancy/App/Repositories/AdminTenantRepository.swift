import Foundation
import InternalAPI
import Logging
import PostgresNIO
import ServiceCore

/// The statuses an administrator sees and sets (`provisioning` is registration's own, never shown).
enum TenantStatus: String, Sendable, CaseIterable, Codable {
    case active, trial, suspended

    static let names = allCases.map(\.rawValue).joined(separator: ", ")
}

/// A tenant as platform administration sees it (seed 000's `Tenant`).
struct TenantRecord: Sendable, Equatable {
    var id: UUID
    var name: String
    var slug: String
    var status: TenantStatus
    var allowedOrigins: [String]
    var rateLimitPerMinute: Int
    var monthlyMessageQuota: Int
    var createdAt: Date
    var updatedAt: Date
}

/// What a `PUT /api/admin/tenants/{id}` changes; nil fields stay as they are. Already validated.
struct TenantChanges: Sendable, Equatable {
    var name: String?
    var status: TenantStatus?
    var allowedOrigins: [String]?
    var rateLimitPerMinute: Int?
    var monthlyMessageQuota: Int?
}

struct TenantFilter: Sendable {
    var status: TenantStatus?
    /// Matched as a substring of the name or the slug, case-insensitively, taken literally.
    var search: String?
    var limit: Int
    var offset: Int
}

/// A new tenant made by a super_admin, before it exists anywhere else.
struct NewTenant: Sendable {
    var name: String
    var slug: String
    var allowedOrigins: [String]
    var rateLimitPerMinute: Int
    var monthlyMessageQuota: Int
}

/// Platform administration's reads and writes of tenants. Every change that other services keep a
/// copy of or act on (name, suspension) writes its event to the outbox in the same transaction.
protocol AdminTenantRepository: Sendable {
    func list(_ filter: TenantFilter, logger: Logger) async throws -> (tenants: [TenantRecord], total: Int)
    /// A registered tenant (never a `provisioning` one).
    func find(_ id: UUID, logger: Logger) async throws -> TenantRecord?
    /// Applies `changes` with the tenant's row locked; `authorize` sees it first and may refuse
    /// (throw), changing nothing. nil when there is no such registered tenant.
    func update(
        _ id: UUID, _ changes: TenantChanges, authorize: @escaping @Sendable (TenantRecord) throws -> Void, logger: Logger
    ) async throws -> TenantRecord?
    /// Reserves `tenant.slug` with a `provisioning` row; 409 `SLUG_TAKEN` when a tenant has it.
    func createProvisioning(_ tenant: NewTenant, logger: Logger) async throws -> TenantRecord
    /// Finishes a created tenant: onboarding progress (no step done: the owner is only invited),
    /// the default agent and status `active`, in one transaction.
    func activateCreated(_ id: UUID, agent: AgentConfig, logger: Logger) async throws -> TenantRecord
    /// Registered tenants per status, and how many registered since `since`.
    func counts(since: Date, logger: Logger) async throws -> (byStatus: [TenantStatus: Int], createdSince: Int)
}

struct PostgresAdminTenantRepository: AdminTenantRepository {
    let client: Database
    let outbox: Outbox

    private static let columns = """
        id, name, slug, status, allowed_origins, rate_limit_per_minute, monthly_message_quota, created_at, updated_at
        """

    func list(_ filter: TenantFilter, logger: Logger) async throws -> (tenants: [TenantRecord], total: Int) {
        // The same filter for the page and the count, bound by position.
        func filtered(_ head: String, _ tail: String) -> PostgresQuery {
            var binds = PostgresBindings()
            binds.append(filter.status?.rawValue)
            binds.append(filter.search.map { "%" + Self.likeEscaped($0) + "%" })
            let sql = head + """
                 WHERE status <> 'provisioning' AND ($1::text IS NULL OR status = $1)
                 AND ($2::text IS NULL OR name ILIKE $2 ESCAPE '\\' OR slug ILIKE $2 ESCAPE '\\')
                """ + " " + tail
            return PostgresQuery(unsafeSQL: sql, binds: binds)
        }
        let rows = try await client.query(
            filtered("SELECT \(Self.columns) FROM tenants", "ORDER BY created_at DESC, id LIMIT \(filter.limit) OFFSET \(filter.offset)"),
            logger: logger
        )
        let total = try await client.query(filtered("SELECT count(*)::int FROM tenants", ""), logger: logger)
        return (try rows.rows.map(Self.record(from:)), try total.decode(Int.self).first ?? 0)
    }

    /// `text` with LIKE's wildcards (`%`, `_`) and its escape character taken literally.
    static func likeEscaped(_ text: String) -> String {
        var escaped = ""
        for character in text {
            if character == "\\" || character == "%" || character == "_" { escaped.append("\\") }
            escaped.append(character)
        }
        return escaped
    }

    func find(_ id: UUID, logger: Logger) async throws -> TenantRecord? {
        let rows = try await client.query(
            "SELECT \(unescaped: Self.columns) FROM tenants WHERE id = \(id) AND status <> 'provisioning'", logger: logger
        )
        return try rows.rows.first.map(Self.record(from:))
    }

    func update(
        _ id: UUID, _ changes: TenantChanges, authorize: @escaping @Sendable (TenantRecord) throws -> Void, logger: Logger
    ) async throws -> TenantRecord? {
        let outbox = self.outbox
        return try await client.transaction(logger: logger) { connection in
            let current = try await connection.query(
                "SELECT \(unescaped: Self.columns) FROM tenants WHERE id = \(id) AND status <> 'provisioning' FOR UPDATE", logger: logger
            ).collect()
            guard let before = try current.first.map(Self.record(from:)) else { return nil }
            try authorize(before)
            let rows = try await connection.query(
                """
                UPDATE tenants SET
                    name = coalesce(\(changes.name), name),
                    status = coalesce(\(changes.status?.rawValue), status),
                    allowed_origins = coalesce(\(changes.allowedOrigins)::text[], allowed_origins),
                    rate_limit_per_minute = coalesce(\(changes.rateLimitPerMinute), rate_limit_per_minute),
                    monthly_message_quota = coalesce(\(changes.monthlyMessageQuota), monthly_message_quota)
                WHERE id = \(id)
                RETURNING \(unescaped: Self.columns), (extract(epoch FROM updated_at) * 1000000)::int8
                """,
                logger: logger
            ).collect()
            guard let row = rows.first else { return nil }
            let after = try Self.record(from: row)
            let version = try row.decode((UUID, String, String, String, [String], Int, Int, Date, Date, Int64).self).9
            for type in Self.events(from: before, to: after) {
                let payload = TenantChanged(tenantId: id, name: after.name, slug: after.slug, status: after.status.rawValue, version: version)
                try await outbox.enqueue(try EventEnvelope(type: type, source: "tenancy", payload: payload), on: connection, logger: logger)
            }
            return after
        }
    }

    /// The events a change makes: a new name, a suspension, the end of one. Other changes (limits,
    /// origins, trial ↔ active) reach the gateway by its policy feed and chat by its short cache.
    static func events(from before: TenantRecord, to after: TenantRecord) -> [EventType] {
        var events: [EventType] = []
        if before.name != after.name { events.append(TenantChanged.renamed) }
        if before.status != .suspended, after.status == .suspended { events.append(TenantChanged.suspended) }
        if before.status == .suspended, after.status != .suspended { events.append(TenantChanged.reactivated) }
        return events
    }

    func createProvisioning(_ tenant: NewTenant, logger: Logger) async throws -> TenantRecord {
        do {
            let rows = try await client.query(
                """
                INSERT INTO tenants (id, name, slug, status, allowed_origins, rate_limit_per_minute, monthly_message_quota)
                VALUES (\(UUID()), \(tenant.name), \(tenant.slug), 'provisioning', \(tenant.allowedOrigins)::text[], \(tenant.rateLimitPerMinute),
                        \(tenant.monthlyMessageQuota))
                RETURNING \(unescaped: Self.columns)
                """,
                logger: logger
            )
            // `provisioning` reads as `active` in the record: it is one as soon as activation commits.
            guard let row = rows.rows.first else { throw AppError.internalError("insert returned no row") }
            return try Self.record(from: row)
        } catch where error.isUniqueViolation {
            throw Self.slugTaken
        }
    }

    static let slugTaken = AppError.conflict("A tenant already has this slug", code: "SLUG_TAKEN")

    func activateCreated(_ id: UUID, agent: AgentConfig, logger: Logger) async throws -> TenantRecord {
        try await client.transaction(logger: logger) { connection in
            try await connection.query(
                "INSERT INTO onboarding_progress (id, tenant_id) VALUES (\(UUID()), \(id))", logger: logger
            )
            try await connection.query(
                """
                INSERT INTO agent_configs (tenant_id, agent_name, tone, greeting_message)
                VALUES (\(id), \(agent.agentName), \(agent.tone), \(agent.greetingMessage))
                """,
                logger: logger
            )
            let rows = try await connection.query(
                "UPDATE tenants SET status = 'active' WHERE id = \(id) RETURNING \(unescaped: Self.columns)", logger: logger
            ).collect()
            guard let row = rows.first else { throw AppError.internalError("the created tenant is gone") }
            return try Self.record(from: row)
        }
    }

    func counts(since: Date, logger: Logger) async throws -> (byStatus: [TenantStatus: Int], createdSince: Int) {
        let rows = try await client.query(
            """
            SELECT status, count(*)::int, (count(*) FILTER (WHERE created_at >= \(since)))::int
            FROM tenants WHERE status <> 'provisioning' GROUP BY status
            """,
            logger: logger
        )
        var byStatus = Dictionary(uniqueKeysWithValues: TenantStatus.allCases.map { ($0, 0) })
        var createdSince = 0
        for (status, count, recent) in try rows.decode((String, Int, Int).self) {
            if let status = TenantStatus(rawValue: status) { byStatus[status] = count }
            createdSince += recent
        }
        return (byStatus, createdSince)
    }

    /// Reads the columns of `columns`, first in the row.
    private static func record(from row: PostgresRow) throws -> TenantRecord {
        let (id, name, slug, status, origins, limit, quota, createdAt, updatedAt) =
            try row.decode((UUID, String, String, String, [String], Int, Int, Date, Date).self)
        return TenantRecord(
            id: id, name: name, slug: slug, status: TenantStatus(rawValue: status) ?? .active, allowedOrigins: origins,
            rateLimitPerMinute: limit, monthlyMessageQuota: quota, createdAt: createdAt, updatedAt: updatedAt
        )
    }
}
