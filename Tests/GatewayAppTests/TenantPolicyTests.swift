import Foundation
import HTTPTypes
import NIOHTTP1
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

@testable import GatewayApp

/// Per-tenant policy at the gateway, from tenancy's feed: each tenant's own rate limit, suspension
/// within seconds, the last known policy kept while tenancy is down, and a feed only the gateway
/// can read.
@Suite("tenant policy", .timeLimit(.minutes(3)))
struct TenantPolicyTests {
    static let overrides = ["TENANT_POLICY_REFRESH_SECONDS": "1", "RATE_LIMIT_TENANT_PER_MINUTE": "1000"]

    static func within(_ seconds: Double, _ probe: () async throws -> Bool) async throws -> Double? {
        try await Polling.within(seconds, probe)
    }

    @Test func tenantsGetTheirOwnLimitAndSuspensionTakesEffectWithinSeconds() async throws {
        try await TestStack.with(.auth, .billing, .tenancy, .gateway, overrides: Self.overrides) { stack in
            let me = stack.url(.gateway) + "/api/auth/me"
            let first = try await Fixtures.register(at: stack.url(.gateway))
            let second = try await Fixtures.register(at: stack.url(.gateway))
            let tenancy = stack.databases[.tenancy]!
            // Tenancy stores each new tenant's limit (60 here); it replaces the gateway's default (1000).
            let known = try await Self.within(10) {
                try await TestHTTP.send(.GET, me, headers: Fixtures.bearer(second.accessToken)).header("X-RateLimit-Limit") == "60"
            }
            #expect(known != nil, "tenancy's limit for a new tenant never reached the gateway")

            // A tenant's own limit replaces the default.
            _ = try await TestPostgres.count(
                tenancy, "WITH u AS (UPDATE tenants SET rate_limit_per_minute = 7 WHERE id = \(UUID(uuidString: first.tenantId)!) RETURNING 1) SELECT count(*)::int FROM u"
            )
            let limited = try await Self.within(10) {
                try await TestHTTP.send(.GET, me, headers: Fixtures.bearer(first.accessToken)).header("X-RateLimit-Limit") == "7"
            }
            #expect(limited != nil, "the new limit never reached the gateway")
            #expect(try await TestHTTP.send(.GET, me, headers: Fixtures.bearer(second.accessToken)).header("X-RateLimit-Limit") == "60")

            // Suspension: the tenant's authenticated traffic is 403 within seconds; others go on.
            _ = try await TestPostgres.count(
                tenancy, "WITH u AS (UPDATE tenants SET status = 'suspended' WHERE id = \(UUID(uuidString: first.tenantId)!) RETURNING 1) SELECT count(*)::int FROM u"
            )
            let suspendedAfter = try await Self.within(10) {
                try await TestHTTP.send(.GET, me, headers: Fixtures.bearer(first.accessToken)).status == 403
            }
            #expect(suspendedAfter != nil && suspendedAfter! < 10, "suspension took \(suspendedAfter.map { "\($0) s" } ?? "over 10 s")")
            let refused = try await TestHTTP.send(.GET, me, headers: Fixtures.bearer(first.accessToken))
            #expect(try refused.error().code == "TENANT_SUSPENDED")
            #expect(try !refused.error().detail.isEmpty)
            #expect(try await TestHTTP.send(.GET, me, headers: Fixtures.bearer(second.accessToken)).status == 200)

            // Tenancy down: the last known policy stays.
            await stack.stop(.tenancy)
            try await Task.sleep(for: .seconds(2))
            #expect(try await TestHTTP.send(.GET, me, headers: Fixtures.bearer(first.accessToken)).status == 403)
            #expect(try await TestHTTP.send(.GET, me, headers: Fixtures.bearer(second.accessToken)).status == 200)
        }
    }

    /// A tenant's `allowed_origins` reach the gateway with its policy: pages on those origins may call
    /// the widget's routes cross-origin (no credentials), never the token-protected ones, and no
    /// longer once the tenant is suspended or drops the origin.
    @Test func aTenantsOwnOriginsMayCallTheWidgetRoutes() async throws {
        try await TestStack.with(.auth, .billing, .tenancy, .gateway, overrides: Self.overrides) { stack in
            let tenant = try await Fixtures.register(at: stack.url(.gateway))
            let tenancy = stack.databases[.tenancy]!
            let shop = "https://shop.example.com"
            let preflight = { (path: String, origin: String) in
                try await TestHTTP.send(
                    .OPTIONS, stack.url(.gateway) + path,
                    headers: ["Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type, x-tenant-slug"]
                )
            }
            // Not listed yet: refused like any unknown origin.
            let before = try await preflight("/api/sessions/init", shop)
            #expect(before.status == 403)
            #expect(try before.error().code == "CORS_ORIGIN_NOT_ALLOWED")

            let set = { (sql: PostgresQuery) in _ = try await TestPostgres.count(tenancy, sql) }
            let id = UUID(uuidString: tenant.tenantId)!
            try await set("WITH u AS (UPDATE tenants SET allowed_origins = ARRAY['https://shop.example.com'] WHERE id = \(id) RETURNING 1) SELECT count(*)::int FROM u")
            let allowedAfter = try await Self.within(10) { try await preflight("/api/sessions/init", shop).status == 204 }
            #expect(allowedAfter != nil, "the tenant's origin never reached the gateway")
            let allowed = try await preflight("/api/sessions/init", shop)
            #expect(allowed.header("Access-Control-Allow-Origin") == shop)
            #expect(allowed.header("Access-Control-Allow-Credentials") == nil)
            #expect(allowed.header("Vary") == "Origin")
            // An ordinary answer on a widget route carries it too (the body is chat's business: no chat here).
            let plans = try await TestHTTP.send(.GET, stack.url(.gateway) + "/api/tenants/\(tenant.tenantSlug)/theme", headers: ["Origin": shop])
            #expect(plans.header("Access-Control-Allow-Origin") == shop)
            // Not on routes that take an access token or credentials, and not for another origin.
            for path in ["/api/auth/users", "/api/auth/login", "/api/admin/tenants"] {
                let refused = try await preflight(path, shop)
                #expect(refused.status == 403, "\(path)")
            }
            let me = try await TestHTTP.send(.GET, stack.url(.gateway) + "/api/auth/me", headers: Fixtures.bearer(tenant.accessToken).merging(["Origin": shop]) { $1 })
            #expect(me.status == 200)
            #expect(me.header("Access-Control-Allow-Origin") == nil)
            #expect(try await preflight("/api/sessions/init", "https://elsewhere.example.com").status == 403)

            // Suspended: its origins no longer count.
            try await set("WITH u AS (UPDATE tenants SET status = 'suspended' WHERE id = \(id) RETURNING 1) SELECT count(*)::int FROM u")
            let droppedAfter = try await Self.within(10) { try await preflight("/api/sessions/init", shop).status == 403 }
            #expect(droppedAfter != nil, "a suspended tenant's origin was still allowed")
        }
    }

    @Test func theFeedAnswersTheGatewayAlone() async throws {
        try await TestStack.with(.auth, .billing, .tenancy, overrides: Self.overrides) { stack in
            let registered = try await Fixtures.register(at: stack.url(.tenancy))
            let feed = stack.url(.tenancy) + "/internal/gateway/tenant-policies"
            // Another service's own key is not enough (auth calls tenancy, but not this route), nor a key
            // that is not the gateway's, nor the gateway's token made for another service.
            let auth = try await TestStack.callInternal(.get, feed, callee: .tenancy, as: .auth)
            #expect(auth.status == 401)
            #expect(try auth.error().code == "CALLER_NOT_ALLOWED")
            let stranger = try await CallerIdentity(name: "gateway", privateKeyPEM: CallerIdentity.makeKeyPair().privateKeyPEM)
            let forged = try await TestHTTP.send(
                .GET, feed, headers: ["X-Caller-Token": try await stranger.token(for: "tenancy", method: .get, target: "/internal/gateway/tenant-policies")]
            )
            #expect(forged.status == 401)
            let wrongAudience = try await TestHTTP.send(.GET, feed, headers: try await TestStack.callerHeaders(as: .gateway, to: .billing, .get, feed))
            #expect(wrongAudience.status == 401)

            let get = { (url: String) in try await TestStack.callInternal(.get, url, callee: .tenancy, as: .gateway) }
            let page = try await get(feed)
            #expect(page.status == 200)
            #expect(page.text.contains(registered.tenantId))
            for bad in ["limit=0", "limit=5000", "changed_since=-1", "changed_since=abc", "after=not-a-uuid"] {
                let response = try await get(feed + "?" + bad)
                #expect(response.status == 422, "\(bad): \(response.status)")
            }
            // Paging: one tenant per page, then an empty last page.
            let one = try await get(feed + "?limit=1")
            #expect(one.text.contains(#""next":{"#))
        }
    }
}
