import Foundation
import Logging
import PostgresNIO
import ServiceCore

/// A tenant's settings: the `tenant_settings` object, and `allow_signup`, which lives on the tenant
/// because auth's tenant lookup (`TenantSummary.allowSignup`) reads it from there.
struct TenantSettingsRepository: Sendable {
    struct Current: Sendable {
        var settings: TenantSettings
        var allowSignup: Bool
        var updatedAt: Date?
    }

    let client: Database
    private var table: JSONSettingsTable { JSONSettingsTable(client: client, table: .tenantSettings) }

    func find(tenantID: UUID, allowSignup: Bool, logger: Logger) async throws -> Current? {
        guard let stored = try await table.read(tenantID: tenantID, defaults: TenantSettings.defaultsJSON, logger: logger) else { return nil }
        return Current(settings: try Self.decode(stored.json), allowSignup: allowSignup, updatedAt: stored.updatedAt)
    }

    /// Merges `patch` and sets `allow_signup` (when given) in one transaction; nil when no registered
    /// tenant has the id.
    func update(tenantID: UUID, patch: String, allowSignup: Bool?, logger: Logger) async throws -> Current? {
        let table = self.table
        let stored: (json: String, updatedAt: Date, allowSignup: Bool)? = try await client.transaction(logger: logger) { connection in
            // Only a change that names `allow_signup` touches the tenant (its `updated_at` feeds the gateway).
            let query: PostgresQuery
            if let allowSignup {
                query = "UPDATE tenants SET allow_signup = \(allowSignup) WHERE id = \(tenantID) AND status <> 'provisioning' RETURNING allow_signup"
            } else {
                query = "SELECT allow_signup FROM tenants WHERE id = \(tenantID) AND status <> 'provisioning' FOR SHARE"
            }
            let rows = try await connection.query(query, logger: logger)
            var allowed: Bool?
            for try await value in rows.decode(Bool.self) { allowed = value }
            guard let allowed,
                let merged = try await table.merge(tenantID: tenantID, patch: patch, defaults: TenantSettings.defaultsJSON, on: connection, logger: logger)
            else { return nil }
            return (merged.json, merged.updatedAt, allowed)
        }
        return try stored.map { Current(settings: try Self.decode($0.json), allowSignup: $0.allowSignup, updatedAt: $0.updatedAt) }
    }

    static func decode(_ json: String) throws -> TenantSettings {
        try JSONCoding.decoder.decode(TenantSettings.self, from: Data(json.utf8))
    }
}
