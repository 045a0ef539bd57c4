import Foundation
import NIOHTTP1
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

@testable import TenancyApp

/// Tenants put straight into tenancy's database and tokens signed with auth's real key, so the
/// administration's routes are tried against real services without a registration each.
enum AdminHarness {
    typealias TenantView = AdminTenantsController.TenantView

    /// The tenant's administered columns, as the database holds them.
    struct Row: Equatable {
        var name: String
        var status: String
        var allowedOrigins: [String]
        var rateLimitPerMinute: Int
        var monthlyMessageQuota: Int
    }

    /// A registered tenant (row, onboarding and agent) with `name`; its slug is made unique.
    @discardableResult
    static func seed(
        _ stack: TestStack, name: String, slug: String? = nil, status: String = "active", origins: [String] = [], rateLimit: Int = 60
    ) async throws -> UUID {
        let id = UUID()
        let slug = slug ?? "t-\(UUID().uuidString.prefix(8).lowercased())"
        _ = try await TestPostgres.count(
            stack.databases[.tenancy]!,
            """
            WITH t AS (
                INSERT INTO tenants (id, name, slug, status, allowed_origins, rate_limit_per_minute)
                VALUES (\(id), \(name), \(slug), \(status), \(origins)::text[], \(rateLimit)) RETURNING id
            ), a AS (
                INSERT INTO agent_configs (tenant_id, agent_name, tone, greeting_message)
                SELECT id, 'Assistant', 'friendly', 'Hi!' FROM t RETURNING 1
            ) SELECT count(*)::int FROM a
            """
        )
        return id
    }

    static func token(_ stack: TestStack, _ role: Role, of tenant: UUID = UUID()) async throws -> String {
        try await TokenForge.fromAuthDatabase(stack.databases[.auth]!).sign(tenantID: tenant, role: role)
    }

    static func send(
        _ stack: TestStack, _ method: HTTPMethod, _ path: String, token: String?, json: (any Encodable)? = nil, raw: String? = nil
    ) async throws -> TestResponse {
        let headers = token.map(Fixtures.bearer) ?? [:]
        return try await TestHTTP.send(method, stack.url(.tenancy) + path, headers: headers, json: json, body: raw)
    }

    static func row(_ stack: TestStack, _ id: UUID) async throws -> Row? {
        try await TestPostgres.withClient(stack.databases[.tenancy]!) { client in
            let rows = try await client.query(
                "SELECT name, status, allowed_origins, rate_limit_per_minute, monthly_message_quota FROM tenants WHERE id = \(id)"
            ).collect()
            return try rows.first.map { row in
                let (name, status, origins, limit, quota) = try row.decode((String, String, [String], Int, Int).self)
                return Row(name: name, status: status, allowedOrigins: origins, rateLimitPerMinute: limit, monthlyMessageQuota: quota)
            }
        }
    }

    static func count(_ stack: TestStack, _ query: PostgresQuery, in service: ServiceName = .tenancy) async throws -> Int {
        try await TestPostgres.count(stack.databases[service]!, query)
    }

    /// Event types in tenancy's outbox, oldest first.
    static func outboxTypes(_ stack: TestStack) async throws -> [String] {
        try await TestPostgres.withClient(stack.databases[.tenancy]!) { client in
            try await client.query("SELECT type FROM outbox_events ORDER BY created_at, type").collect().map { try $0.decode(String.self) }
        }
    }

    /// Expects `response` to be the error `status`/`code`, naming `fields` when given.
    static func expectError(
        _ response: TestResponse, _ status: Int, _ code: String, fields: [String] = [], sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(response.status == status, "\(response.text)", sourceLocation: sourceLocation)
        guard let error = try? response.error() else {
            Issue.record("not an error body: \(response.text)", sourceLocation: sourceLocation)
            return
        }
        #expect(error.code == code, "\(response.text)", sourceLocation: sourceLocation)
        #expect(!error.detail.isEmpty, sourceLocation: sourceLocation)
        for field in fields {
            #expect(error.fields?[field] != nil, "no problem named for \(field): \(response.text)", sourceLocation: sourceLocation)
        }
    }
}
