import Foundation
import NIOHTTP1
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

/// Tenant configuration that crosses services, driven through the gateway: an agent change reaching
/// chat's answers, and the sign-up switch reaching auth.
@Suite("tenant configuration across services")
struct TenantConfigurationFlowTests {
    static let overrides = [
        // Polling below goes faster than the default per-session and per-IP credential limits allow.
        "RATE_LIMIT_SESSION_PER_MINUTE": "1000", "RATE_LIMIT_AUTH_PER_MINUTE": "1000", "CHAT_STREAM_TOKEN_DELAY_MS": "0",
    ]

    /// The text chat answers a session with right now.
    static func answer(_ gateway: String, session: String) async throws -> String {
        let (status, _, events) = try await TestHTTP.events(gateway + "/chatkit", headers: ["X-Session-ID": session], body: "{}")
        guard status == 200 else { throw FixtureError(description: "chatkit answered \(status)") }
        struct Event: Decodable { var type: String; var content: String? }
        return events.compactMap { try? JSONCoding.decoder.decode(Event.self, from: Data($0.data.utf8)) }
            .first { $0.type == "message.completed" }?.content ?? ""
    }

    @Test func anAgentChangeReachesChatWithinTenSeconds() async throws {
        try await TestStack.with(.auth, .billing, .tenancy, .chat, .gateway, overrides: Self.overrides) { stack in
            let gateway = stack.url(.gateway)
            let owner = try await Fixtures.register(at: gateway, accountName: "Greeting Shop")
            let session = try await TestHTTP.send(.POST, gateway + "/api/sessions/init", headers: ["X-Tenant-Slug": owner.tenantSlug], json: [String: String]())
            #expect(session.status == 201)
            struct Session: Decodable { var sessionId: String }
            let sessionID = try session.json(Session.self).sessionId
            // chat has read (and cached) the greeting made at registration.
            #expect(try await Self.answer(gateway, session: sessionID) == "Hi! I'm the virtual assistant of Greeting Shop. How can I help you today?")

            let greeting = "Welcome back! Ask me anything about our bread."
            let put = try await TestHTTP.send(
                .PUT, gateway + "/api/admin/tenants/\(owner.tenantId)/agent-config", headers: Fixtures.bearer(owner.accessToken),
                json: ["greeting_message": greeting]
            )
            #expect(put.status == 200)
            let changed = ContinuousClock.now
            var seen = ""
            while ContinuousClock.now - changed < .seconds(12) {
                seen = try await Self.answer(gateway, session: sessionID)
                if seen == greeting { break }
                try await Task.sleep(for: .milliseconds(500))
            }
            let took = ContinuousClock.now - changed
            #expect(seen == greeting)
            #expect(took < .seconds(10), "chat answered the old greeting for \(took)")
            // The step is done, as onboarding status shows.
            struct Status: Decodable { var progress: [String: Bool] }
            let status = try await TestHTTP.send(.GET, gateway + "/api/onboarding/status", headers: Fixtures.bearer(owner.accessToken))
            #expect(try status.json(Status.self).progress["step_agent_configured"] == true)
        }
    }

    @Test func signupFollowsTheTenantsSetting() async throws {
        try await TestStack.with(.auth, .billing, .tenancy, .gateway, overrides: Self.overrides) { stack in
            let gateway = stack.url(.gateway)
            let owner = try await Fixtures.register(at: gateway, accountName: "Signup Shop")
            let email = Fixtures.uniqueEmail("joiner")
            let signup: [String: String] = ["email": email, "password": Fixtures.password, "tenant_slug": owner.tenantSlug]
            let refused = try await TestHTTP.send(.POST, gateway + "/api/auth/signup", json: signup)
            #expect(refused.status == 403)
            #expect(try refused.error().code == "SIGNUP_DISABLED")
            #expect(try await TestPostgres.count(stack.databases[.auth]!, "SELECT count(*)::int FROM users WHERE email = \(email)") == 0)

            let put = try await TestHTTP.send(
                .PUT, gateway + "/api/tenant/settings", headers: Fixtures.bearer(owner.accessToken), json: ["settings": ["allow_signup": true]]
            )
            #expect(put.status == 200)
            let changed = ContinuousClock.now
            // auth keeps what tenancy said about the tenant for 10 s.
            var last = refused
            while ContinuousClock.now - changed < .seconds(13) {
                last = try await TestHTTP.send(.POST, gateway + "/api/auth/signup", json: signup)
                if last.status != 403 { break }
                try await Task.sleep(for: .milliseconds(500))
            }
            #expect(last.status == 201, "\(last.text)")
            #expect(ContinuousClock.now - changed < .seconds(12))
            let joined = try await TestPostgres.count(
                stack.databases[.auth]!,
                "SELECT count(*)::int FROM users WHERE email = \(email) AND tenant_id = \(UUID(uuidString: owner.tenantId)!) AND role = 'user'"
            )
            #expect(joined == 1)
        }
    }
}
