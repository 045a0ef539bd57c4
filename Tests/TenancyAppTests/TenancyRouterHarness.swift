import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import InternalAPI
import NIOCore
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

@testable import TenancyApp

/// tenancy's router driven in this process (HummingbirdTesting's `.router`), against a real
/// PostgreSQL database of its own. auth runs for real beside it, only to publish the JWKS the router
/// verifies tokens with; tokens for any tenant and role come from auth's key (`TokenForge`).
/// Tenants are made straight in tenancy's database, as registration leaves them.
struct TenancyRouterHarness: Sendable {
    /// An answer, read whole.
    struct Answer: Sendable {
        var status: Int
        var headers: HTTPFields
        var body: Data

        func json<T: Decodable>(_ type: T.Type = T.self) throws -> T { try JSONCoding.decoder.decode(T.self, from: body) }
        func error() throws -> ErrorBody { try json(ErrorBody.self) }
        /// The body as a JSON object, keys as sent.
        func object() throws -> [String: Any] {
            try #require(try JSONSerialization.jsonObject(with: body) as? [String: Any])
        }
    }

    let client: any TestClientProtocol
    let stack: TestStack
    let forge: TokenForge

    var database: DatabaseConfig { stack.databases[.tenancy]! }

    /// Builds tenancy from the same environment the service gets and runs `body` against its router.
    static func with(_ services: ServiceName..., body: @escaping @Sendable (TenancyRouterHarness) async throws -> Void) async throws {
        let stack = try await TestStack.make()
        do {
            try await stack.start(.auth)
            for service in services { try await stack.start(service) }
            let forge = try await TokenForge.fromAuthDatabase(stack.databases[.auth]!)
            let app = try await buildTenancyApplication(config: TenancyConfig(settings: Settings.variables(stack.environment(for: .tenancy))))
            try await app.test(.router) { client in
                try await body(TenancyRouterHarness(client: client, stack: stack, forge: forge))
            }
            await stack.stopAll()
        } catch {
            await stack.stopAll()
            throw error
        }
    }

    func send(
        _ method: HTTPRequest.Method, _ path: String, token: String? = nil, json: (any Encodable)? = nil, raw: String? = nil,
        headers extra: HTTPFields = [:]
    ) async throws -> Answer {
        var headers = extra
        if let token { headers[.authorization] = "Bearer \(token)" }
        var body: ByteBuffer?
        if let json {
            body = ByteBuffer(bytes: try JSONCoding.encoder.encode(json))
        } else if let raw {
            body = ByteBuffer(string: raw)
        }
        if body != nil { headers[.contentType] = "application/json" }
        let response = try await client.execute(uri: path, method: method, headers: headers, body: body)
        return Answer(status: Int(response.status.code), headers: response.headers, body: Data(response.body.readableBytesView))
    }

    /// A token of `role` in `tenant`.
    func token(_ tenant: UUID, _ role: Role) async throws -> String {
        try await forge.sign(tenantID: tenant, role: role)
    }

    /// A registered tenant, as registration leaves it: active, onboarding started, the default agent.
    @discardableResult
    func tenant(_ name: String = "Acme", status: String = "active") async throws -> UUID {
        let id = UUID()
        let slug = "\(name.lowercased().filter { $0.isLetter })-\(id.uuidString.prefix(8).lowercased())"
        try await TestPostgres.withClient(database) { client in
            _ = try await client.query(
                "INSERT INTO tenants (id, name, slug, status, rate_limit_per_minute) VALUES (\(id), \(name), \(slug), \(status), 60)"
            )
            _ = try await client.query("INSERT INTO onboarding_progress (id, tenant_id, step_account_created) VALUES (\(UUID()), \(id), true)")
            _ = try await client.query(
                """
                INSERT INTO agent_configs (tenant_id, agent_name, tone, greeting_message)
                VALUES (\(id), 'Assistant', 'friendly', \("Hi! I'm the virtual assistant of \(name)."))
                """
            )
        }
        return id
    }

    /// One value from tenancy's database.
    func value<T: PostgresDecodable & Sendable>(_ query: PostgresQuery, as type: T.Type = T.self) async throws -> T? {
        try await TestPostgres.withClient(database) { client in
            for try await value in try await client.query(query).decode(T.self) { return value }
            return nil
        }
    }
}
