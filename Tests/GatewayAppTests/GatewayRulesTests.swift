import Foundation
import HTTPTypes
import Testing

@testable import GatewayApp

@Suite("gateway rules")
struct GatewayRulesTests {
    @Test func pathsAreNormalised() {
        #expect(PathNormalizer.normalize("/api/auth/me") == "/api/auth/me")
        #expect(PathNormalizer.normalize("/api/auth/me/") == "/api/auth/me/")
        #expect(PathNormalizer.normalize("/api/x/.hidden") == "/api/x/.hidden")
        #expect(PathNormalizer.normalize("/api/x/a.b") == "/api/x/a.b")
        #expect(PathNormalizer.normalize("api") == nil)
        #expect(PathNormalizer.normalize("//api//auth/./me") == "/api/auth/me")
        #expect(PathNormalizer.normalize("/api/auth/../../internal/owners") == "/internal/owners")
        #expect(PathNormalizer.normalize("/api/auth/%2e%2e/%2e%2e/internal/owners") == "/internal/owners")
        #expect(PathNormalizer.normalize("/%69nternal/x") == "/internal/x")
        #expect(PathNormalizer.normalize("/api/%2Finternal") == "/api/internal")
        #expect(PathNormalizer.normalize("/..") == nil)
        #expect(PathNormalizer.normalize("/a%zz") == nil)
        #expect(PathNormalizer.normalize("/a%00b") == nil)
        #expect(PathNormalizer.normalize("/a\\b") == nil)
        #expect(PathNormalizer.normalize("/%2569nternal") == nil)
        #expect(PathNormalizer.isInternal("/internal"))
        #expect(PathNormalizer.isInternal("/INTERNAL/owners"))
        #expect(!PathNormalizer.isInternal("/internals"))
        #expect(PathNormalizer.encodeForUpstream("/api/tenants/a b/theme") == "/api/tenants/a%20b/theme")
    }

    @Test func prefixesPickTheOwningService() {
        #expect(RouteRules.upstream(for: "/api/auth/login") == .auth)
        #expect(RouteRules.upstream(for: "/.well-known/jwks.json") == .auth)
        #expect(RouteRules.upstream(for: "/api/onboarding/register") == .tenancy)
        #expect(RouteRules.upstream(for: "/api/admin/tenants") == .tenancy)
        #expect(RouteRules.upstream(for: "/api/admin/tenants/1/theme") == .tenancy)
        #expect(RouteRules.upstream(for: "/api/payments/plans") == .billing)
        #expect(RouteRules.upstream(for: "/chatkit") == .chat)
        #expect(RouteRules.upstream(for: "/api/admin/escalation/queue") == .chat)
        #expect(RouteRules.upstream(for: "/api/authx") == nil)
        #expect(RouteRules.upstream(for: "/chatkitty") == nil)
        #expect(RouteRules.upstream(for: "/") == nil)
    }

    @Test func accessRules() {
        #expect(RouteRules.access(method: .post, path: "/api/auth/login", sessionID: nil) == .credentials)
        #expect(RouteRules.access(method: .post, path: "/api/onboarding/register", sessionID: nil) == .credentials)
        #expect(RouteRules.access(method: .get, path: "/api/auth/login", sessionID: nil) == .authenticated)
        #expect(RouteRules.access(method: .get, path: "/api/payments/plans", sessionID: nil) == .open)
        #expect(RouteRules.access(method: .get, path: "/api/tenants/acme/theme", sessionID: nil) == .open)
        #expect(RouteRules.access(method: .get, path: "/api/tenants/acme/secrets", sessionID: nil) == .authenticated)
        #expect(RouteRules.access(method: .post, path: "/chatkit", sessionID: "sess_1") == .session("sess_1"))
        #expect(RouteRules.access(method: .post, path: "/chatkit", sessionID: nil) == .authenticated)
        #expect(RouteRules.access(method: .get, path: "/api/payments/subscription", sessionID: "sess_1") == .authenticated)
        #expect(RouteRules.access(method: .post, path: "/api/auth/login/", sessionID: nil) == .credentials)
        #expect(RouteRules.access(method: .get, path: "/", sessionID: nil) == .authenticated)
    }

    @Test func limiterCountsPerKeyAndWindow() {
        let limiter = RateLimiter(maxKeys: 1_000)
        let start = Date(timeIntervalSince1970: 1_000_000)
        let decisions = (0..<4).map { _ in limiter.check(key: "a", limit: 3, now: start) }
        #expect(decisions.map(\.allowed) == [true, true, true, false])
        #expect(decisions.map(\.remaining) == [2, 1, 0, 0])
        #expect(decisions[3].resetAt == 1_000_060)
        #expect(decisions[3].retryAfter == 60)
        #expect(limiter.check(key: "b", limit: 3, now: start).allowed)
        let later = limiter.check(key: "a", limit: 3, now: start.addingTimeInterval(61))
        #expect(later.allowed)
        #expect(later.remaining == 2)
    }

    @Test func limiterMemoryStaysBoundedUnderAFlood() {
        let limiter = RateLimiter(maxKeys: 1_024)
        let now = Date()
        for index in 0..<100_000 {
            _ = limiter.check(key: "ip|10.\(index >> 16).\((index >> 8) & 255).\(index & 255)", limit: 100, now: now)
        }
        #expect(limiter.keyCount <= 1_024)
        // A key that keeps coming back is still limited correctly after the flood.
        for _ in 0..<5 { _ = limiter.check(key: "steady", limit: 5, now: now) }
        #expect(limiter.check(key: "steady", limit: 5, now: now).allowed == false)
    }
}
