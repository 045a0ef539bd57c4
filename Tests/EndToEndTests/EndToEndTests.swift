import Foundation
import NIOHTTP1
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

/// The five real executables on loopback ports, driven through the gateway like a client.
@Suite("end to end", .serialized)
struct EndToEndTests {
    struct Login: Decodable { var accessToken: String; var role: String; var tenantId: String }
    struct Me: Decodable { var email: String; var tenantSlug: String; var role: String }
    struct Subscription: Decodable { var plan: String; var status: String; var daysRemaining: Int? }
    struct Status: Decodable { var plan: String; var subscriptionStatus: String; var completionPercentage: Int }
    struct Session: Decodable { var sessionId: String }

    @Test func theSliceThroughAllFiveServices() async throws {
        let stack = try await TestStack.make(overrides: ["RATE_LIMIT_AUTH_PER_MINUTE": "5"])
        let services = try ChildServices(stack: stack)
        defer { services.stopAll() }
        for service in [ServiceName.auth, .billing, .tenancy, .chat, .gateway] { try await services.start(service) }
        let gateway = stack.url(.gateway)

        // register → login → me → subscription → onboarding status
        let email = Fixtures.uniqueEmail("e2e")
        let registered = try await Fixtures.register(at: gateway, email: email, accountName: "Corner Bakery")
        #expect(registered.tenantSlug == "corner-bakery")
        let login = try await TestHTTP.send(.POST, gateway + "/api/auth/login", json: ["email": email, "password": Fixtures.password])
        #expect(login.status == 200)
        let token = try login.json(Login.self).accessToken
        let me = try await TestHTTP.send(.GET, gateway + "/api/auth/me", headers: Fixtures.bearer(token))
        #expect(me.status == 200)
        #expect(try me.json(Me.self).tenantSlug == "corner-bakery")
        let subscription = try await TestHTTP.send(.GET, gateway + "/api/payments/subscription", headers: Fixtures.bearer(token))
        #expect(try subscription.json(Subscription.self).status == "trialing")
        let status = try await TestHTTP.send(.GET, gateway + "/api/onboarding/status", headers: Fixtures.bearer(token))
        #expect(status.status == 200)
        #expect(try status.json(Status.self).plan == "trial")

        // widget: session init → chatkit stream, events arriving one by one
        let session = try await TestHTTP.send(.POST, gateway + "/api/sessions/init", headers: ["X-Tenant-Slug": "corner-bakery"], json: [String: String]())
        #expect(session.status == 201)
        let sessionID = try session.json(Session.self).sessionId
        let unknownSlug = try await TestHTTP.send(.POST, gateway + "/api/sessions/init", headers: ["X-Tenant-Slug": "no-such-shop"], json: [String: String]())
        #expect(unknownSlug.status == 404)
        let (streamStatus, contentType, events) = try await TestHTTP.events(gateway + "/chatkit", headers: ["X-Session-ID": sessionID], body: "{}")
        #expect(streamStatus == 200)
        #expect(contentType == "text/event-stream")
        #expect(events.count > 8)
        #expect(events.last?.data == "[DONE]")
        let total = events.last!.at
        // Tokens are produced 100 ms apart: through the gateway the first arrives long before the last.
        #expect(events.first!.at < total - .milliseconds(800))
        let gaps = zip(events.dropFirst(), events).map { $0.at - $1.at }
        #expect(gaps.filter { $0 > .milliseconds(50) }.count >= events.count / 2)

        // billing stopped: payments answer 503, auth keeps answering, registration leaves nothing behind
        #expect(services.stop(.billing) == 0)
        let plans = try await TestHTTP.send(.GET, gateway + "/api/payments/plans")
        #expect(plans.status == 503)
        #expect(try plans.error().detail.isEmpty == false)
        #expect(try await TestHTTP.send(.GET, gateway + "/api/payments/subscription", headers: Fixtures.bearer(token)).status == 503)
        #expect(try await TestHTTP.send(.GET, gateway + "/api/auth/me", headers: Fixtures.bearer(token)).status == 200)
        let orphanEmail = Fixtures.uniqueEmail("orphan")
        let failed = try await TestHTTP.send(
            .POST, gateway + "/api/onboarding/register", json: ["email": orphanEmail, "password": Fixtures.password, "account_name": "Orphan Shop"]
        )
        #expect(failed.status == 503 || failed.status == 502)
        #expect(try await TestPostgres.count(stack.databases[.tenancy]!, "SELECT count(*)::int FROM tenants WHERE name = 'Orphan Shop'") == 0)
        #expect(try await TestPostgres.count(stack.databases[.auth]!, "SELECT count(*)::int FROM users WHERE email = \(orphanEmail)") == 0)

        // auth endpoints are limited per IP: 5 per minute here, 3 already used
        var last: TestResponse?
        for _ in 0..<5 {
            last = try await TestHTTP.send(.POST, gateway + "/api/auth/login", json: ["email": email, "password": "Wrong-pass1"])
            if last?.status == 429 { break }
        }
        let limited = try #require(last)
        #expect(limited.status == 429)
        #expect(limited.header("Retry-After") != nil)
        #expect(limited.header("X-RateLimit-Limit") == "5")
        #expect(limited.header("X-RateLimit-Remaining") == "0")
        #expect(limited.header("X-RateLimit-Reset") != nil)
        #expect(try limited.error().detail.hasPrefix("Rate limit exceeded"))

        // Every service shuts down cleanly on SIGTERM.
        for service in [ServiceName.gateway, .chat, .tenancy, .auth] {
            #expect(services.stop(service) == 0, "\(service.rawValue) exit status")
        }
        #expect(services.log(.auth).contains(#""request_id""#))
    }

    @Test func dataSurvivesARestart() async throws {
        let stack = try await TestStack.make()
        let services = try ChildServices(stack: stack)
        defer { services.stopAll() }
        for service in [ServiceName.auth, .billing, .tenancy, .gateway] { try await services.start(service) }
        let registered = try await Fixtures.register(at: stack.url(.gateway))
        for service in [ServiceName.gateway, .tenancy, .billing, .auth] { services.stop(service) }
        for service in [ServiceName.auth, .billing, .tenancy, .gateway] { try await services.start(service) }
        let login = try await TestHTTP.send(.POST, stack.url(.gateway) + "/api/auth/login", json: ["email": registered.email, "password": Fixtures.password])
        #expect(login.status == 200)
        let token = try login.json(Login.self).accessToken
        // The token issued before the restart is still valid: the signing key was kept.
        #expect(try await TestHTTP.send(.GET, stack.url(.gateway) + "/api/auth/me", headers: Fixtures.bearer(registered.accessToken)).status == 200)
        #expect(try await TestHTTP.send(.GET, stack.url(.gateway) + "/api/payments/subscription", headers: Fixtures.bearer(token)).status == 200)
    }
}
