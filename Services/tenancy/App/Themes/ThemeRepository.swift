import Foundation
import InternalAPI
import Logging
import PostgresNIO
import ServiceCore

/// A tenant's theme as stored: only the fields it set (`tenant_themes.overrides`, one row per
/// tenant); every other field answers its default from `ThemeFields`.
protocol ThemeRepository: Sendable {
    /// The overrides of the tenant with `slug`, for the public theme: nil unless it is `trial` or `active`.
    func publicOverrides(slug: String, logger: Logger) async throws -> [String: JSONValue]?
    /// The overrides of tenant `tenantID` in any status but `provisioning`; nil when there is no such tenant.
    func overrides(tenantID: UUID, logger: Logger) async throws -> [String: JSONValue]?
    /// Stores `set` and drops `reset` in one statement (concurrent partial updates of different
    /// fields both land); nil when there is no such tenant.
    func update(tenantID: UUID, set: [String: JSONValue], reset: [String], logger: Logger) async throws -> [String: JSONValue]?
}

struct PostgresThemeRepository: ThemeRepository {
    let client: Database

    func publicOverrides(slug: String, logger: Logger) async throws -> [String: JSONValue]? {
        let rows = try await client.query(
            """
            SELECT coalesce(th.overrides, '{}'::jsonb)::text FROM tenants t LEFT JOIN tenant_themes th ON th.tenant_id = t.id
            WHERE t.slug = \(slug) AND t.status IN ('trial', 'active')
            """,
            logger: logger
        )
        return try rows.decode(String.self).first.map(Self.decode)
    }

    func overrides(tenantID: UUID, logger: Logger) async throws -> [String: JSONValue]? {
        let rows = try await client.query(
            """
            SELECT coalesce(th.overrides, '{}'::jsonb)::text FROM tenants t LEFT JOIN tenant_themes th ON th.tenant_id = t.id
            WHERE t.id = \(tenantID) AND t.status <> 'provisioning'
            """,
            logger: logger
        )
        return try rows.decode(String.self).first.map(Self.decode)
    }

    func update(tenantID: UUID, set: [String: JSONValue], reset: [String], logger: Logger) async throws -> [String: JSONValue]? {
        try await client.transaction(logger: logger) { connection in
            try await Self.update(tenantID: tenantID, set: set, reset: reset, on: connection, logger: logger)
        }
    }

    /// The same update inside a caller's transaction (branding applies and withdraws asset urls).
    static func update(
        tenantID: UUID, set: [String: JSONValue], reset: [String], on connection: PostgresConnection, logger: Logger
    ) async throws -> [String: JSONValue]? {
        let json = String(decoding: try JSONCoding.encoder.encode(set), as: UTF8.self)
        let rows = try await connection.query(
            """
            INSERT INTO tenant_themes (tenant_id, overrides)
            SELECT id, \(json)::jsonb FROM tenants WHERE id = \(tenantID) AND status <> 'provisioning'
            ON CONFLICT (tenant_id) DO UPDATE
            SET overrides = (tenant_themes.overrides || EXCLUDED.overrides) - \(reset)::text[], updated_at = now()
            RETURNING overrides::text
            """,
            logger: logger
        )
        return try await rows.collect().first.map { try decode($0.decode(String.self)) }
    }

    static func decode(_ text: String) throws -> [String: JSONValue] {
        try JSONCoding.decoder.decode([String: JSONValue].self, from: Data(text.utf8))
    }
}
