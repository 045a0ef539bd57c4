import ServiceCore

/// Everything the gateway reads from its environment.
package struct GatewayConfig: Sendable {
    package var server: ServerConfig
    package var upstreams: [Upstream]
    package var jwksURL: String
    /// How often the JWKS is refetched (`JWKS_REFRESH_SECONDS`).
    package var jwksRefreshSeconds: Int
    package var corsOrigins: [String]
    package var limits: RateLimits
    /// Most distinct keys (IPs, tenants, sessions) the limiter remembers; older windows are evicted first.
    package var rateLimitMaxKeys: Int
    /// The gateway's own database, where replicas share limits; nil keeps limits per replica.
    package var sharedLimitsDatabase: DatabaseConfig?
    /// Without its database, count limits per replica (true) or refuse with 503 (false).
    package var sharedLimitsFailOpen: Bool
    /// A lease call slower than this counts as the shared-limits database being unreachable.
    package var sharedLimitsTimeoutMilliseconds: Int
    /// The gateway's own signing key (PEM, P-256): how it proves itself to tenancy's policy feed.
    /// Without it, every tenant gets the default limit and suspensions are not enforced here.
    package var serviceKey: String?
    /// How often tenant policies are refreshed from tenancy.
    package var tenantPolicyRefreshSeconds: Int
    /// How often the gateway asks auth for new revocations (logouts take effect within about this).
    package var revocationRefreshSeconds: Int
    /// Proxies whose `X-Forwarded-For` is believed (`TRUSTED_PROXIES`, CIDR list; empty trusts no one).
    var trustedProxies: TrustedProxies
    package var upstreamConnectTimeoutMilliseconds: Int
    /// Time an upstream has to start answering (response head).
    package var upstreamTimeoutMilliseconds: Int
    package var healthCheckIntervalSeconds: Int
    /// Declared bodies up to this size are read whole before they are forwarded; larger ones are relayed.
    package var bodyBufferBytes: Int
    /// Time a client has to send a body that is read whole, or may pause within a relayed one.
    package var bodyTimeoutSeconds: Int
    /// Time a client has to finish a request head once it has begun one (slow-loris clients).
    package var headerTimeoutSeconds: Int
    /// Time a kept-alive client connection may sit idle between requests.
    package var idleTimeoutSeconds: Int
    /// Largest request head, all header lines together (431 beyond).
    package var maxHeaderBytes: Int
    /// Time an upstream may pause within an answer (streams pause between events).
    package var upstreamIdleTimeoutSeconds: Int
    /// Where `/metrics` and the detailed `/health` are served; loopback unless said otherwise.
    package var adminHost: String
    package var adminPort: Int

    package init(
        server: ServerConfig, upstreams: [Upstream], jwksURL: String, corsOrigins: [String] = [], limits: RateLimits = RateLimits(),
        rateLimitMaxKeys: Int = 100_000, upstreamConnectTimeoutMilliseconds: Int = 2_000,
        upstreamTimeoutMilliseconds: Int = 30_000, healthCheckIntervalSeconds: Int = 5, bodyBufferBytes: Int = 1_048_576,
        bodyTimeoutSeconds: Int = 30, headerTimeoutSeconds: Int = 10, idleTimeoutSeconds: Int = 75, maxHeaderBytes: Int = 32_768,
        upstreamIdleTimeoutSeconds: Int = 300, adminHost: String = "127.0.0.1", adminPort: Int = 0
    ) {
        self.server = server
        self.upstreams = upstreams
        self.jwksURL = jwksURL
        self.jwksRefreshSeconds = AccessTokenVerifier.defaultRefreshSeconds
        self.corsOrigins = corsOrigins
        self.limits = limits
        self.rateLimitMaxKeys = rateLimitMaxKeys
        self.trustedProxies = .none
        self.sharedLimitsDatabase = nil
        self.sharedLimitsFailOpen = true
        self.sharedLimitsTimeoutMilliseconds = 2_000
        self.serviceKey = nil
        self.tenantPolicyRefreshSeconds = 5
        self.revocationRefreshSeconds = 2
        self.upstreamConnectTimeoutMilliseconds = upstreamConnectTimeoutMilliseconds
        self.upstreamTimeoutMilliseconds = upstreamTimeoutMilliseconds
        self.healthCheckIntervalSeconds = healthCheckIntervalSeconds
        self.bodyBufferBytes = bodyBufferBytes
        self.bodyTimeoutSeconds = bodyTimeoutSeconds
        self.headerTimeoutSeconds = headerTimeoutSeconds
        self.idleTimeoutSeconds = idleTimeoutSeconds
        self.maxHeaderBytes = maxHeaderBytes
        self.upstreamIdleTimeoutSeconds = upstreamIdleTimeoutSeconds
        self.adminHost = adminHost
        self.adminPort = adminPort
    }

    package init(settings: Settings) throws {
        var server = try ServerConfig(settings: settings, defaultPort: 8080)
        // The gateway streams bodies; its cap is the largest upload any service accepts (knowledge base: 50 MiB).
        server.maxBodyBytes = try settings.int("MAX_BODY_BYTES", default: 52_428_800, range: 1_024...1_073_741_824)
        self.server = server
        let auth = try settings.url("AUTH_URL")
        self.upstreams = [
            Upstream(name: .auth, baseURL: auth),
            Upstream(name: .tenancy, baseURL: try settings.url("TENANCY_URL")),
            Upstream(name: .billing, baseURL: try settings.url("BILLING_URL")),
            Upstream(name: .chat, baseURL: try settings.url("CHAT_URL")),
        ]
        self.jwksURL = try settings.url("JWKS_URL", default: auth + "/.well-known/jwks.json")
        self.jwksRefreshSeconds = try settings.jwksRefreshSeconds()
        self.corsOrigins = settings.list("CORS_ORIGINS")
        self.limits = RateLimits(
            publicPerMinute: try settings.int("RATE_LIMIT_PUBLIC_PER_MINUTE", default: 100, range: 1...1_000_000_000),
            authPerMinute: try settings.int("RATE_LIMIT_AUTH_PER_MINUTE", default: 10, range: 1...1_000_000_000),
            tenantPerMinute: try settings.int("RATE_LIMIT_TENANT_PER_MINUTE", default: 60, range: 1...1_000_000_000),
            sessionPerMinute: try settings.int("RATE_LIMIT_SESSION_PER_MINUTE", default: 10, range: 1...1_000_000_000)
        )
        self.rateLimitMaxKeys = try settings.int("RATE_LIMIT_MAX_KEYS", default: 100_000, range: 64...10_000_000)
        self.serviceKey = try settings.pem("SERVICE_KEY", isSecret: true)
        self.tenantPolicyRefreshSeconds = try settings.int("TENANT_POLICY_REFRESH_SECONDS", default: 5, range: 1...10)
        self.revocationRefreshSeconds = try settings.int("REVOCATION_REFRESH_SECONDS", default: 2, range: 1...4)
        let databaseURL = settings.string("GATEWAY_DATABASE_URL", default: "")
        if databaseURL.isEmpty {
            self.sharedLimitsDatabase = nil
        } else {
            var database = try DatabaseConfig(url: databaseURL, variable: "GATEWAY_DATABASE_URL", maxConnections: 4)
            try database.readCheckTimeout(settings)
            self.sharedLimitsDatabase = database
        }
        switch settings.string("RATE_LIMIT_SHARED_FAILURE", default: "open").lowercased() {
        case "open": self.sharedLimitsFailOpen = true
        case "closed": self.sharedLimitsFailOpen = false
        case let other: throw ConfigurationError(variable: "RATE_LIMIT_SHARED_FAILURE", problem: "must be open or closed, got '\(other)'")
        }
        self.sharedLimitsTimeoutMilliseconds = try settings.int("RATE_LIMIT_SHARED_TIMEOUT_MS", default: 2_000, range: 100...60_000)
        do {
            self.trustedProxies = try TrustedProxies(parsing: settings.string("TRUSTED_PROXIES", default: ""))
        } catch {
            throw ConfigurationError(variable: "TRUSTED_PROXIES", problem: "'\(error.entry)' is not an IP address or CIDR block (e.g. 10.0.0.0/8, 127.0.0.1, fd00::/8)")
        }
        self.upstreamConnectTimeoutMilliseconds = try settings.int("UPSTREAM_CONNECT_TIMEOUT_MS", default: 2_000, range: 10...60_000)
        self.upstreamTimeoutMilliseconds = try settings.int("UPSTREAM_TIMEOUT_MS", default: 30_000, range: 10...600_000)
        self.healthCheckIntervalSeconds = try settings.int("HEALTH_CHECK_INTERVAL_SECONDS", default: 5, range: 1...3_600)
        self.bodyBufferBytes = try settings.int("BODY_BUFFER_BYTES", default: 1_048_576, range: 0...1_073_741_824)
        self.bodyTimeoutSeconds = try settings.int("BODY_TIMEOUT_SECONDS", default: 30, range: 1...3_600)
        self.headerTimeoutSeconds = try settings.int("HEADER_TIMEOUT_SECONDS", default: 10, range: 1...3_600)
        self.idleTimeoutSeconds = try settings.int("IDLE_TIMEOUT_SECONDS", default: 75, range: 1...86_400)
        self.maxHeaderBytes = try settings.int("MAX_HEADER_BYTES", default: 32_768, range: 1_024...1_048_576)
        self.upstreamIdleTimeoutSeconds = try settings.int("UPSTREAM_IDLE_TIMEOUT_SECONDS", default: 300, range: 1...86_400)
        self.adminHost = settings.string("GATEWAY_ADMIN_HOST", default: "127.0.0.1")
        self.adminPort = try settings.int("GATEWAY_ADMIN_PORT", default: 9080, range: 0...65535)
    }
}

/// Requests per minute for each limiter scope (seed 000's defaults).
package struct RateLimits: Sendable {
    package var publicPerMinute: Int
    package var authPerMinute: Int
    package var tenantPerMinute: Int
    package var sessionPerMinute: Int

    package init(publicPerMinute: Int = 100, authPerMinute: Int = 10, tenantPerMinute: Int = 60, sessionPerMinute: Int = 10) {
        self.publicPerMinute = publicPerMinute
        self.authPerMinute = authPerMinute
        self.tenantPerMinute = tenantPerMinute
        self.sessionPerMinute = sessionPerMinute
    }
}

/// A service behind the gateway.
package struct Upstream: Sendable {
    package typealias Name = PublicService

    package var name: Name
    package var baseURL: String

    package init(name: Name, baseURL: String) {
        self.name = name
        self.baseURL = baseURL
    }
}
