import AsyncHTTPClient
import Hummingbird
import InternalAPI
import Logging
import NIOCore
import PostgresNIO
import ServiceLifecycle
import ServiceCore

/// Builds the gateway: the public data plane (the only public entry, routing by path to the four
/// services) and, on the admin port, `/metrics` and the detailed `/health`.
package func buildGatewayApplication(
    config: GatewayConfig,
    onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
) async throws -> some ApplicationProtocol {
    var logger = Logger(label: "gateway")
    logger.logLevel = config.server.logLevel
    let metrics = ServiceMetrics()

    // For the upstream health checks and the JWKS only; requests are forwarded by the data plane.
    var clientConfiguration = HTTPClient.Configuration()
    clientConfiguration.timeout = .init(connect: .milliseconds(Int64(config.upstreamConnectTimeoutMilliseconds)), read: .seconds(10))
    clientConfiguration.connectionPool.retryConnectionEstablishment = false
    clientConfiguration.tracing.tracer = nil
    let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: clientConfiguration)

    let monitor = UpstreamMonitor(
        upstreams: config.upstreams, http: http, interval: .seconds(config.healthCheckIntervalSeconds), logger: logger
    )
    let verifier = AccessTokenVerifier(
        source: HTTPJWKSSource(url: config.jwksURL, client: http), refreshInterval: .seconds(config.jwksRefreshSeconds), logger: logger
    )
    let localLimiter = RateLimiter(maxKeys: config.rateLimitMaxKeys)
    var limiter: any RequestLimiter = localLimiter
    var services: [any Service] = [HTTPClientService(client: http), monitor, verifier]
    if let databaseConfig = config.sharedLimitsDatabase {
        let postgres = PostgresClient(configuration: databaseConfig.clientConfiguration, backgroundLogger: logger)
        let database = Database(client: postgres, monitor: DatabaseMonitor(database: databaseConfig, logger: logger))
        limiter = SharedRateLimiter(
            database: database, fallback: localLimiter, maxKeys: config.rateLimitMaxKeys, failOpen: config.sharedLimitsFailOpen,
            leaseTimeout: .milliseconds(config.sharedLimitsTimeoutMilliseconds), logger: logger
        )
        services += [postgres, database.monitor, SharedLimitsMaintenance(postgres: postgres, database: database, windowSeconds: 60, logger: logger)]
    }
    var tenantPolicies: TenantPolicies?
    var voided: Revocations?
    var apiKeys: APIKeyTokens?
    let tunnels = OpenTunnels()
    var widgetOrigin: (@Sendable (String) -> Bool)? = nil
    if let key = config.serviceKey {
        let identity = try await CallerIdentity(name: "gateway", privateKeyPEM: key)
        let policies = TenantPolicies()
        let revocations = Revocations()
        tenantPolicies = policies
        widgetOrigin = { policies.isWidgetOrigin($0) }
        voided = revocations
        let upstream = { (name: PublicService) in config.upstreams.first { $0.name == name }!.baseURL }
        let keyExchange = APIKeyExchangeClient(authURL: upstream(.auth), identity: identity, http: http, timeout: .seconds(5), logger: logger)
        apiKeys = APIKeyTokens(exchange: { try await keyExchange.exchange($0) }, verifier: verifier)
        services += [
            ChangeFeedSync<TenantPolicyPage>(
                name: "tenant policies", service: "tenancy", url: "\(upstream(.tenancy))/internal/gateway/tenant-policies",
                identity: identity, http: http, interval: .seconds(config.tenantPolicyRefreshSeconds), logger: logger,
                firstKey: FeedCursor.noTenant,
                apply: { page in
                    policies.apply(page.policies)
                    tunnels.close { policies.policy(for: $0.tenantID)?.suspended == true }
                }
            ),
            ChangeFeedSync<RevocationPage>(
                name: "revocations", service: "auth", url: "\(upstream(.auth))/internal/gateway/revocations", identity: identity,
                http: http, interval: .seconds(config.revocationRefreshSeconds), logger: logger, firstKey: "",
                apply: { page in
                    revocations.apply(page.revocations)
                    tunnels.close(where: revocations.voids)
                },
                caughtUp: { revocations.markCaughtUp() }
            ),
        ]
    } else {
        logger.notice(
            "SERVICE_KEY is not set: every tenant gets the default rate limit, suspensions are enforced by the services alone, the gateway does not see logouts, and API keys are refused"
        )
    }
    let plane = DataPlane(
        admission: Admission(
            verifier: verifier, limiter: limiter, limits: config.limits, tenantPolicies: tenantPolicies, revocations: voided,
            apiKeys: apiKeys
        ),
        cors: CORSPolicy(origins: config.corsOrigins, widgetOrigin: widgetOrigin),
        upstreams: Dictionary(uniqueKeysWithValues: try config.upstreams.map { ($0.name, try UpstreamAddress($0)) }),
        limits: .init(
            maxBodyBytes: config.server.maxBodyBytes,
            bufferBytes: config.bodyBufferBytes,
            bodyTimeout: .seconds(Int64(config.bodyTimeoutSeconds)),
            headerTimeout: .seconds(Int64(config.headerTimeoutSeconds)),
            idleTimeout: .seconds(Int64(config.idleTimeoutSeconds)),
            upstreamConnectTimeout: .milliseconds(Int64(config.upstreamConnectTimeoutMilliseconds)),
            upstreamTimeout: .milliseconds(Int64(config.upstreamTimeoutMilliseconds)),
            upstreamIdleTimeout: .seconds(Int64(config.upstreamIdleTimeoutSeconds))
        ),
        monitor: monitor,
        metrics: MetricHandles(factory: metrics.factory),
        logger: logger,
        trustedProxies: config.trustedProxies,
        tunnels: tunnels
    )
    let dataPlane = DataPlaneServer(
        plane: plane, host: config.server.host, port: config.server.port, maxHeaderBytes: config.maxHeaderBytes,
        onServerRunning: onServerRunning
    )

    let admin = Router(context: GatewayRequestContext.self)
    admin.add(middleware: RequestIDMiddleware())
    admin.add(middleware: ErrorMiddleware())
    GatewayHealthController(monitor: monitor).addRoutes(to: admin)
    HealthController<GatewayRequestContext>(service: "gateway", checks: [], metrics: metrics, includeHealth: false)
        .addRoutes(to: admin)

    return Application(
        router: admin,
        configuration: .init(address: .hostname(config.adminHost, port: config.adminPort), serverName: "gateway-admin"),
        services: services + [dataPlane],
        logger: logger
    )
}
