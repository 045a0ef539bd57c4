import Foundation
import InternalAPI
import NIOHTTP1
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

/// Platform administration's effects on the other services, through the gateway: allowed origins
/// at chat's session start, a rename reaching auth's directory by tenancy's outbox, a suspension
/// refused at the gateway and stopping chat's sessions within 10 s (by the event, not chat's cache
/// running out), and a tenant's own rate limit enforced at the gateway.
@Suite("tenant administration across services", .timeLimit(.minutes(3)))
struct TenantAdministrationLiveTests {
    static let superAdminEmail = "ops@platform.example.com"
    static let overrides = [
        "SUPER_ADMIN_EMAIL": superAdminEmail, "SUPER_ADMIN_PASSWORD": Fixtures.password, "TENANT_POLICY_REFRESH_SECONDS": "1",
        "RATE_LIMIT_TENANT_PER_MINUTE": "1000", "CHAT_STREAM_TOKEN_DELAY_MS": "0",
        // Longer than the 10 s promised: a suspension must reach chat by tenancy's event.
        "TENANT_CACHE_SECONDS": "120",
    ]

    struct Session: Decodable { var sessionId: String }

    static func within(_ seconds: Double, _ probe: () async throws -> Bool) async throws -> Double? {
        try await Polling.within(seconds, probe)
    }

    @Test func administrationReachesTheGatewayAuthAndChat() async throws {
        try await TestStack.with(.auth, .billing, .tenancy, .chat, .gateway, overrides: Self.overrides) { stack in
            let gateway = stack.url(.gateway)
            let registered = try await Fixtures.register(at: gateway, accountName: "Corner Bakery")
            let tenant = try #require(UUID(uuidString: registered.tenantId))
            let login = try await TestHTTP.send(.POST, gateway + "/api/auth/login", json: ["email": Self.superAdminEmail, "password": Fixtures.password])
            #expect(login.status == 200, "\(login.text)")
            struct Login: Decodable { var accessToken: String }
            let admin = Fixtures.bearer(try login.json(Login.self).accessToken)
            let owner = Fixtures.bearer(registered.accessToken)
            let tenantPath = gateway + "/api/admin/tenants/\(registered.tenantId)"
            func put(_ json: String) async throws -> TestResponse {
                try await TestHTTP.send(.PUT, tenantPath, headers: admin, body: json)
            }
            func initSession(origin: String?) async throws -> TestResponse {
                var headers = ["X-Tenant-Slug": registered.tenantSlug]
                headers["Origin"] = origin
                return try await TestHTTP.send(.POST, gateway + "/api/sessions/init", headers: headers, json: [String: String]())
            }

            // Allowed origins, set by the admin API, decide which pages start the tenant's sessions.
            #expect(try await put(#"{"allowed_origins": ["https://shop.example.com"]}"#).status == 200)
            let allowed = try await initSession(origin: "https://shop.example.com")
            #expect(allowed.status == 201, "\(allowed.text)")
            let refused = try await initSession(origin: "https://evil.example.com")
            #expect(refused.status == 403)
            #expect(try refused.error().code == "ORIGIN_NOT_ALLOWED")
            #expect(try await initSession(origin: nil).status == 201)
            let sessionID = try allowed.json(Session.self).sessionId
            let chat = { try await TestHTTP.send(.POST, gateway + "/chatkit", headers: ["X-Session-ID": sessionID], body: "{}").status }
            #expect(try await chat() == 200)
            struct Validity: Decodable { var valid: Bool }
            let validate = {
                try await TestHTTP.send(.POST, gateway + "/api/sessions/validate", headers: ["X-Session-ID": sessionID]).json(Validity.self).valid
            }
            #expect(try await validate())

            // A rename reaches auth's copy of the tenant through tenancy's outbox.
            #expect(try await put(#"{"name": "Bakery on the Corner"}"#).status == 200)
            let renamed = try await Self.within(10) {
                try await TestPostgres.count(
                    stack.databases[.auth]!,
                    "SELECT count(*)::int FROM tenant_directory WHERE tenant_id = \(tenant) AND name = 'Bakery on the Corner' AND slug = \(registered.tenantSlug)"
                ) == 1
            }
            #expect(renamed != nil, "the rename never reached auth")
            struct Me: Decodable { var tenantName: String }
            #expect(try await TestHTTP.send(.GET, gateway + "/api/auth/me", headers: owner).json(Me.self).tenantName == "Bakery on the Corner")

            // A suspension: the tenant's tokens refused at the gateway, its widget sessions stopped in chat.
            #expect(try await put(#"{"status": "suspended"}"#).status == 200)
            let gatewayRefuses = try await Self.within(10) {
                try await TestHTTP.send(.GET, gateway + "/api/auth/me", headers: owner).status == 403
            }
            #expect(gatewayRefuses != nil, "the gateway never refused the suspended tenant")
            let suspendedAnswer = try await TestHTTP.send(.GET, gateway + "/api/auth/me", headers: owner)
            #expect(try suspendedAnswer.error().code == "TENANT_SUSPENDED")
            let chatStops = try await Self.within(10) { try await chat() == 403 }
            #expect(chatStops != nil, "chat still serves the suspended tenant's session after 10 s")
            #expect(try await validate() == false, "a suspended tenant's session still validates")
            #expect(try await initSession(origin: "https://shop.example.com").status == 403)
            // Other tenants go on.
            let neighbour = try await Fixtures.register(at: gateway)
            #expect(try await TestHTTP.send(.GET, gateway + "/api/auth/me", headers: Fixtures.bearer(neighbour.accessToken)).status == 200)

            // Reactivated: both come back, again within seconds.
            #expect(try await put(#"{"status": "active"}"#).status == 200)
            #expect(try await Self.within(10) { try await TestHTTP.send(.GET, gateway + "/api/auth/me", headers: owner).status == 200 } != nil)
            #expect(try await Self.within(10) { try await chat() == 200 } != nil)
            #expect(try await validate())

            // The tenant's own limit, set by the admin API, is the gateway's for its tokens.
            #expect(try await put(#"{"rate_limit_per_minute": 4}"#).status == 200)
            let limited = try await Self.within(10) {
                try await TestHTTP.send(.GET, gateway + "/api/auth/me", headers: owner).header("X-RateLimit-Limit") == "4"
            }
            #expect(limited != nil, "the tenant's limit never reached the gateway")
            var statuses: [Int] = []
            for _ in 0..<5 { statuses.append(try await TestHTTP.send(.GET, gateway + "/api/auth/me", headers: owner).status) }
            #expect(statuses.contains(429), "\(statuses)")
            let tooMany = try await TestHTTP.send(.GET, gateway + "/api/auth/me", headers: owner)
            #expect(tooMany.status == 429)
            #expect(try tooMany.error().code == "RATE_LIMITED")
            #expect(try await TestHTTP.send(.GET, gateway + "/api/auth/me", headers: Fixtures.bearer(neighbour.accessToken)).status == 200)

            // Every event was applied once in each receiver.
            let events = try await TestPostgres.count(stack.databases[.tenancy]!, "SELECT count(*)::int FROM outbox_events")
            #expect(events == 3)
            let delivered = try await Self.within(10) {
                try await TestPostgres.count(stack.databases[.tenancy]!, "SELECT count(*)::int FROM outbox_deliveries WHERE delivered_at IS NOT NULL") == 6
            }
            #expect(delivered != nil)
            #expect(try await TestPostgres.count(stack.databases[.auth]!, "SELECT count(*)::int FROM processed_events WHERE source = 'tenancy'") == 3)
            #expect(try await TestPostgres.count(stack.databases[.chat]!, "SELECT count(*)::int FROM processed_events WHERE source = 'tenancy'") == 3)
        }
    }
}
