import Foundation
import Logging
import PostgresNIO
import ServiceCore

/// A tenant's settings kept as one JSON object per tenant (`widget_configs`, `tenant_settings`):
/// only the fields the tenant changed, already validated, merged over the defaults on every read, so
/// a field never set reads as its current default. A change merges its fields into the object in
/// one statement, so two partial updates at once both land.
struct JSONSettingsTable: Sendable {
    enum Table: String {
        case widgetConfigs = "widget_configs"
        case tenantSettings = "tenant_settings"
    }

    struct Stored: Sendable {
        /// The stored fields merged over the defaults (JSON text of an object).
        var json: String
        /// When the tenant last changed them; nil while everything is a default.
        var updatedAt: Date?
        var tenantStatus: String
        var tenantSlug: String
    }

    let client: Database
    let table: Table

    /// The JSON text of a type's defaults, to merge stored fields over.
    static func defaults(_ value: some Encodable) -> String {
        String(decoding: (try? JSONCoding.encoder.encode(value)) ?? Data("{}".utf8), as: UTF8.self)
    }

    /// nil when no registered tenant has the id.
    func read(tenantID: UUID, defaults: String, logger: Logger) async throws -> Stored? {
        let rows = try await client.query(
            """
            SELECT (CAST(\(defaults) AS jsonb) || COALESCE(s.settings, '{}'::jsonb))::text, s.updated_at, t.status, t.slug
            FROM tenants t LEFT JOIN \(unescaped: table.rawValue) s ON s.tenant_id = t.id
            WHERE t.id = \(tenantID) AND t.status <> 'provisioning'
            """,
            logger: logger
        )
        for (json, updatedAt, status, slug) in try rows.decode((String, Date?, String, String).self) {
            return Stored(json: json, updatedAt: updatedAt, tenantStatus: status, tenantSlug: slug)
        }
        return nil
    }

    /// Merges `patch` (a JSON object of validated fields) into the tenant's object on `connection`;
    /// nil when no registered tenant has the id (nothing written).
    func merge(tenantID: UUID, patch: String, defaults: String, on connection: PostgresConnection, logger: Logger) async throws
        -> (json: String, updatedAt: Date)?
    {
        let rows = try await connection.query(
            """
            INSERT INTO \(unescaped: table.rawValue) AS s (tenant_id, settings)
            SELECT t.id, CAST(\(patch) AS jsonb) FROM tenants t WHERE t.id = \(tenantID) AND t.status <> 'provisioning'
            ON CONFLICT (tenant_id) DO UPDATE SET settings = s.settings || EXCLUDED.settings, updated_at = clock_timestamp()
            RETURNING (CAST(\(defaults) AS jsonb) || s.settings)::text, s.updated_at
            """,
            logger: logger
        )
        for try await (json, updatedAt) in rows.decode((String, Date).self) {
            return (json, updatedAt)
        }
        return nil
    }

    func merge(tenantID: UUID, patch: String, defaults: String, logger: Logger) async throws -> (json: String, updatedAt: Date)? {
        try await client.transaction(logger: logger) { connection in
            try await merge(tenantID: tenantID, patch: patch, defaults: defaults, on: connection, logger: logger)
        }
    }
}
