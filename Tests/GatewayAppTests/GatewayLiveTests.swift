import Foundation
import HTTPTypes
import NIOHTTP1
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

@testable import GatewayApp

/// The gateway in front of the real services, called as a client would.
@Suite("gateway")
struct GatewayLiveTests {
    static let securityHeaders = [
        "Content-Security-Policy", "Strict-Transport-Security", "X-Content-Type-Options", "X-Frame-Options", "X-XSS-Protection",
    ]

    static func expectSecurityHeaders(_ response: TestResponse, sourceLocation: SourceLocation = #_sourceLocation) {
        for name in securityHeaders {
            #expect(response.header(name) != nil, "\(name) missing", sourceLocation: sourceLocation)
        }
        #expect(response.header("X-Frame-Options") == "DENY", sourceLocation: sourceLocation)
        #expect(response.header("X-Content-Type-Options") == "nosniff", sourceLocation: sourceLocation)
    }

    /// How many requests auth has counted for a route, from its own /metrics.
    static func authRequests(_ stack: TestStack, route: String) async throws -> Int {
        let metrics = try await TestHTTP.send(.GET, stack.url(.auth) + "/metrics").text
        return metrics.split(separator: "\n")
            .filter { $0.hasPrefix("http_requests_total{") && $0.contains(#"route="\#(route)""#) }
            .compactMap { $0.split(separator: " ").last.flatMap { Int($0) } }
            .reduce(0, +)
    }

    @Test func internalPathsAreNeverRouted() async throws {
        try await TestStack.with(.auth, .gateway) { stack in
            let body = #"{"tenant_id":"6c0a4c52-3a3c-4a55-9d0e-3d0a3d0a3d0a","tenant_name":"X","tenant_slug":"x","email":"sneaky@example.com","password":"Str0ngPassw0rd"}"#
            for path in [
                "/internal/owners", "//internal/owners", "/INTERNAL/owners", "/%69nternal/owners", "/api/auth/../../internal/owners",
                "/api/auth/%2e%2e/%2e%2e/internal/owners", "/./internal/owners",
            ] {
                // Even with a caller token good for auth's real route: the gateway routes public paths only.
                let token = try await TestStack.callerHeaders(as: .tenancy, to: .auth, .post, stack.url(.auth) + "/internal/owners", body: Array(body.utf8))
                let response = try await TestHTTP.send(.POST, stack.url(.gateway) + path, headers: token, body: body)
                #expect(response.status == 404 || response.status == 400, "\(path) answered \(response.status)")
                #expect((try? response.error()) != nil, "\(path)")
            }
            #expect(try await TestPostgres.count(stack.databases[.auth]!, "SELECT count(*)::int FROM users") == 0)
            #expect(try await Self.authRequests(stack, route: "/internal/owners") == 0)
        }
    }

    @Test func protectedRoutesRefuseBadTokensBeforeTouchingTheUpstream() async throws {
        try await TestStack.with(.auth, .billing, .tenancy, .gateway) { stack in
            let registered = try await Fixtures.register(at: stack.url(.gateway))
            let forge = try await TokenForge.fromAuthDatabase(stack.databases[.auth]!)
            let jwks = try await TestHTTP.send(.GET, stack.url(.gateway) + "/.well-known/jwks.json")
            #expect(jwks.status == 200)
            let before = try await Self.authRequests(stack, route: "/api/auth/me")
            let cases: [(String, [String: String])] = [
                ("missing", [:]),
                ("not bearer", ["Authorization": "Basic dXNlcjpwYXNz"]),
                ("malformed", Fixtures.bearer("abc.def")),
                ("expired", Fixtures.bearer(try await forge.expired())),
                ("tampered", Fixtures.bearer(TokenForge.tampered(registered.accessToken))),
                ("alg none", Fixtures.bearer(TokenForge.algNone(registered.accessToken))),
                ("unknown kid", Fixtures.bearer(try await TokenForge.stranger().sign())),
                ("hmac", Fixtures.bearer(try await TokenForge.hmacWithPublicKey(registered.accessToken, jwks: jwks.body))),
            ]
            for (name, headers) in cases {
                let response = try await TestHTTP.send(.GET, stack.url(.gateway) + "/api/auth/me", headers: headers)
                #expect(response.status == 401, "\(name)")
                #expect((try? response.error().detail.isEmpty) == false, "\(name)")
                Self.expectSecurityHeaders(response)
            }
            #expect(try await Self.authRequests(stack, route: "/api/auth/me") == before)
            let ok = try await TestHTTP.send(.GET, stack.url(.gateway) + "/api/auth/me", headers: Fixtures.bearer(registered.accessToken))
            #expect(ok.status == 200)
            Self.expectSecurityHeaders(ok)
            #expect(ok.header("X-RateLimit-Limit") == "60")
        }
    }

    @Test func credentialEndpointsAreRateLimitedPerIP() async throws {
        try await TestStack.with(.auth, .gateway, overrides: ["RATE_LIMIT_AUTH_PER_MINUTE": "3"]) { stack in
            var remaining: [String?] = []
            for _ in 0..<3 {
                let response = try await TestHTTP.send(
                    .POST, stack.url(.gateway) + "/api/auth/login", json: ["email": "x@example.com", "password": "Wrong1234"]
                )
                #expect(response.status == 401)
                #expect(response.header("X-RateLimit-Limit") == "3")
                remaining.append(response.header("X-RateLimit-Remaining"))
            }
            #expect(remaining == ["2", "1", "0"])
            let limited = try await TestHTTP.send(.POST, stack.url(.gateway) + "/api/auth/login", json: ["email": "x@example.com", "password": "Wrong1234"])
            #expect(limited.status == 429)
            #expect(try limited.error().code == "RATE_LIMITED")
            #expect(try limited.error().detail.hasPrefix("Rate limit exceeded"))
            let retryAfter = Int(limited.header("Retry-After") ?? "") ?? 0
            // Sliding window: room for one more comes once the weighted count has fallen, up to two windows on.
            #expect(retryAfter >= 1 && retryAfter <= 120)
            #expect(limited.header("X-RateLimit-Remaining") == "0")
            let reset = Int(limited.header("X-RateLimit-Reset") ?? "") ?? 0
            #expect((1...61).contains(reset - Int(Date().timeIntervalSince1970)))
            #expect(limited.header("RateLimit-Policy") == #""auth";q=3;w=60"#)
            #expect(limited.header("RateLimit") == #""auth";r=0;t=\#(retryAfter)"#)
            Self.expectSecurityHeaders(limited)
            // The public scope is counted separately.
            #expect(try await TestHTTP.send(.GET, stack.url(.gateway) + "/.well-known/jwks.json").status == 200)
            #expect(try await Self.authRequests(stack, route: "/api/auth/login") == 3)
        }
    }

    @Test func authenticatedCallsAreLimitedPerTenant() async throws {
        try await TestStack.with(.auth, .billing, .tenancy, .gateway, overrides: ["RATE_LIMIT_TENANT_PER_MINUTE": "2", "TENANT_DEFAULT_RATE_LIMIT_PER_MINUTE": "2"]) { stack in
            let first = try await Fixtures.register(at: stack.url(.gateway))
            let second = try await Fixtures.register(at: stack.url(.gateway))
            let url = stack.url(.gateway) + "/api/auth/me"
            #expect(try await TestHTTP.send(.GET, url, headers: Fixtures.bearer(first.accessToken)).status == 200)
            #expect(try await TestHTTP.send(.GET, url, headers: Fixtures.bearer(first.accessToken)).status == 200)
            #expect(try await TestHTTP.send(.GET, url, headers: Fixtures.bearer(first.accessToken)).status == 429)
            #expect(try await TestHTTP.send(.GET, url, headers: Fixtures.bearer(second.accessToken)).status == 200)
        }
    }

    @Test func downUpstreamIs503WhileOthersAnswer() async throws {
        try await TestStack.with(.auth, .billing, .tenancy, .gateway) { stack in
            let registered = try await Fixtures.register(at: stack.url(.gateway))
            await stack.stop(.billing)
            let plans = try await TestHTTP.send(.GET, stack.url(.gateway) + "/api/payments/plans")
            #expect(plans.status == 503)
            #expect(try plans.error().detail.contains("billing"))
            Self.expectSecurityHeaders(plans)
            let me = try await TestHTTP.send(.GET, stack.url(.gateway) + "/api/auth/me", headers: Fixtures.bearer(registered.accessToken))
            #expect(me.status == 200)
            struct Health: Decodable {
                struct Upstream: Decodable { var status: String }
                var status: String
                var upstreams: [String: Upstream]
            }
            let health = try await TestHTTP.send(.GET, stack.adminURL + "/health").json(Health.self)
            #expect(health.status == "degraded")
            #expect(health.upstreams["billing"]?.status == "down")
            #expect(health.upstreams["auth"]?.status == "up")
        }
    }

    @Test func slowUpstreamIs504() async throws {
        let silent = try SilentListener()
        try await TestStack.with(.gateway, overrides: ["BILLING_URL": silent.url, "UPSTREAM_TIMEOUT_MS": "500"]) { stack in
            let started = ContinuousClock.now
            let response = try await TestHTTP.send(.GET, stack.url(.gateway) + "/api/payments/plans")
            #expect(response.status == 504)
            #expect(try response.error().code == "UPSTREAM_TIMEOUT")
            #expect(ContinuousClock.now - started < .seconds(5))
            #expect(try await TestHTTP.send(.GET, stack.url(.gateway) + "/live").status == 200)
        }
    }

    @Test func unknownRoutesOversizedBodiesAndCORS() async throws {
        try await TestStack.with(
            .auth, .gateway, overrides: ["CORS_ORIGINS": "https://shop.example", "MAX_BODY_BYTES": "4096"]
        ) { stack in
            let unknown = try await TestHTTP.send(.GET, stack.url(.gateway) + "/nowhere")
            #expect(unknown.status == 404)
            #expect(try unknown.error().code == "NOT_FOUND")
            Self.expectSecurityHeaders(unknown)

            let big = try await TestHTTP.send(.POST, stack.url(.gateway) + "/api/auth/login", body: String(repeating: "x", count: 10_000))
            #expect(big.status == 413)
            #expect(try big.error().code == "PAYLOAD_TOO_LARGE")

            let preflight = try await TestHTTP.send(
                .OPTIONS, stack.url(.gateway) + "/api/auth/login",
                headers: ["Origin": "https://shop.example", "Access-Control-Request-Method": "POST"]
            )
            #expect(preflight.status == 204)
            #expect(preflight.header("Access-Control-Allow-Origin") == "https://shop.example")
            #expect(preflight.header("Access-Control-Allow-Methods")?.contains("POST") == true)
            let refused = try await TestHTTP.send(
                .OPTIONS, stack.url(.gateway) + "/api/auth/login",
                headers: ["Origin": "https://evil.example", "Access-Control-Request-Method": "POST"]
            )
            #expect(refused.status == 403)
            let simple = try await TestHTTP.send(.GET, stack.url(.gateway) + "/.well-known/jwks.json", headers: ["Origin": "https://shop.example"])
            #expect(simple.header("Access-Control-Allow-Origin") == "https://shop.example")
            let other = try await TestHTTP.send(.GET, stack.url(.gateway) + "/.well-known/jwks.json", headers: ["Origin": "https://evil.example"])
            #expect(other.header("Access-Control-Allow-Origin") == nil)

            let traced = try await TestHTTP.send(.GET, stack.url(.gateway) + "/api/auth/me", headers: ["X-Request-ID": "trace-42"])
            #expect(traced.header("X-Request-ID") == "trace-42")
            #expect(try traced.error().requestId == "trace-42")
        }
    }

    @Test func badTokensCountAgainstTheClientAddress() async throws {
        try await TestStack.with(.auth, .gateway, overrides: ["RATE_LIMIT_PUBLIC_PER_MINUTE": "3"]) { stack in
            let garbage = Fixtures.bearer(try await TokenForge.stranger().sign())
            var statuses: [Int] = []
            for _ in 0..<4 {
                statuses.append(try await TestHTTP.send(.GET, stack.url(.gateway) + "/api/auth/me", headers: garbage).status)
            }
            #expect(statuses == [401, 401, 401, 429])
            // Made-up widget sessions are counted per address too.
            let session = try await TestHTTP.send(.POST, stack.url(.gateway) + "/chatkit", headers: ["X-Session-ID": "sess_made_up"])
            #expect(session.status == 429)
        }
    }

    @Test func unreachableJWKSIs503NotAForgedToken() async throws {
        let deadAuth = "http://127.0.0.1:\(try TestPorts.next())"
        try await TestStack.with(.gateway, overrides: ["AUTH_URL": deadAuth, "JWKS_URL": deadAuth + "/.well-known/jwks.json"]) { stack in
            let response = try await TestHTTP.send(.GET, stack.url(.gateway) + "/api/payments/subscription", headers: Fixtures.bearer(try await TokenForge.stranger().sign()))
            #expect(response.status == 503)
            #expect(try response.error().code == "JWKS_UNAVAILABLE")
        }
    }
}
