import AsyncHTTPClient
import Hummingbird
import Logging
import NIOCore
import ServiceCore

/// Builds the gateway: the only public entry, routing by path prefix to the four services.
package func buildGatewayApplication(
    config: GatewayConfig,
    onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
) async throws -> some ApplicationProtocol {
    var logger = Logger(label: "gateway")
    logger.logLevel = config.server.logLevel
    let metrics = ServiceMetrics()

    var clientConfiguration = HTTPClient.Configuration()
    clientConfiguration.timeout = .init(
        connect: .milliseconds(Int64(config.upstreamConnectTimeoutMilliseconds)),
        // Idle time allowed between body parts; streams (SSE) may pause between events.
        read: .seconds(300)
    )
    clientConfiguration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 256
    clientConfiguration.connectionPool.retryConnectionEstablishment = false
    clientConfiguration.decompression = .disabled
    // No tracer is set up; skip per-request span bookkeeping on the proxy's hot path.
    clientConfiguration.tracing.tracer = nil
    let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: clientConfiguration)

    let monitor = UpstreamMonitor(
        upstreams: config.upstreams, http: http, interval: .seconds(config.healthCheckIntervalSeconds), logger: logger
    )
    let verifier = AccessTokenVerifier(source: HTTPJWKSSource(url: config.jwksURL, client: http), logger: logger)

    let router = Router(context: GatewayRequestContext.self)
    router.add(middleware: RequestIDMiddleware())
    router.add(middleware: HTTPMetricsMiddleware(metrics: metrics))
    router.add(middleware: SecurityHeadersMiddleware())
    router.add(middleware: CORSMiddleware(origins: config.corsOrigins))
    router.add(middleware: ErrorMiddleware())

    GatewayHealthController(monitor: monitor).addRoutes(to: router)
    // The gateway has no database: ready as soon as it listens; upstream trouble shows in /health.
    HealthController<GatewayRequestContext>(service: "gateway", checks: [], metrics: metrics, includeHealth: false)
        .addRoutes(to: router)
    ProxyController(
        upstreams: Dictionary(uniqueKeysWithValues: config.upstreams.map { ($0.name, $0) }),
        http: http,
        verifier: verifier,
        limiter: RateLimiter(maxKeys: config.rateLimitMaxKeys),
        limits: config.limits,
        monitor: monitor,
        upstreamTimeout: .milliseconds(Int64(config.upstreamTimeoutMilliseconds)),
        bodyLimits: .init(
            maxBytes: config.server.maxBodyBytes,
            bufferBytes: config.bodyBufferBytes,
            timeout: .seconds(config.bodyTimeoutSeconds)
        ),
        trustForwardedFor: config.trustForwardedFor
    ).addRoutes(to: router)

    return Application(
        router: router,
        configuration: .init(address: .hostname(config.server.host, port: config.server.port), serverName: "gateway"),
        services: [HTTPClientService(client: http), monitor],
        onServerRunning: onServerRunning,
        logger: logger
    )
}
