import AsyncHTTPClient
import Hummingbird
import Logging
import PostgresNIO
import ServiceLifecycle

/// The parts every database-backed service assembles the same way: logger, metrics, database
/// pool, internal HTTP client, its caller identity and the keys of its callers, the standard
/// middleware stack and health routes.
package struct ServiceFoundation: Sendable {
    package let name: String
    package let config: CommonConfig
    package let logger: Logger
    package let metrics: ServiceMetrics
    package let postgres: PostgresClient
    /// The pool behind a monitor; what repositories use.
    package let database: Database
    package let http: HTTPClient
    /// What this service signs its calls to others with.
    package let identity: CallerIdentity
    /// Who may call this service's internal routes (each route then names which of them it accepts).
    package let callers: CallerKeys

    package init(name: String, config: CommonConfig) async throws {
        var logger = Logger(label: name)
        logger.logLevel = config.server.logLevel
        self.name = name
        self.config = config
        self.logger = logger
        self.metrics = ServiceMetrics()
        self.postgres = PostgresClient(configuration: config.database.clientConfiguration, backgroundLogger: logger)
        self.database = Database(client: postgres, monitor: DatabaseMonitor(database: config.database, logger: logger))
        self.http = HTTPClient.makeInternal()
        self.identity = try await CallerIdentity(name: name, privateKeyPEM: config.serviceKeyPEM)
        self.callers = try await CallerKeys(audience: name, publicKeys: config.callerPublicKeys)
    }

    /// A client for another service's `/internal/*` routes.
    package func client(for service: String, baseURL: String) -> InternalClient {
        InternalClient(service: service, baseURL: baseURL, http: http, identity: identity)
    }

    /// Verifies access tokens against auth's JWKS at `url`; add it to the application's services
    /// so it refetches the keys every `refreshSeconds` (`JWKS_REFRESH_SECONDS`).
    package func accessTokenVerifier(jwksURL url: String, refreshSeconds: Int) -> AccessTokenVerifier {
        AccessTokenVerifier(source: HTTPJWKSSource(url: url, client: http), refreshInterval: .seconds(refreshSeconds), logger: logger)
    }

    /// Router with request ids, metrics, error rendering and the body limit, plus the health routes.
    /// `bodyLimits` gives single routes (by path) a body limit other than `MAX_BODY_BYTES`.
    package func makeRouter<Context: ServiceRequestContext>(
        context: Context.Type = AppRequestContext.self, bodyLimits: [String: Int] = [:]
    ) -> RouteTable<Context> {
        let routes = RouteTable(router: Router(context: Context.self))
        routes.addStandardMiddleware(metrics: metrics, maxBodyBytes: config.server.maxBodyBytes, routeBodyLimits: bodyLimits)
        let database = self.database
        let logger = self.logger
        HealthController<Context>(
            service: name,
            checks: [ReadinessCheck("database") { _ = try await database.query("SELECT 1", logger: logger) }],
            metrics: metrics
        ).addRoutes(to: routes)
        return routes
    }

    /// Routes under `/internal/<path>` that answer only `callers`, each by its own key.
    package func internalGroup<Context: ServiceRequestContext>(
        _ routes: RouteTable<Context>, _ path: String = "", accepting callers: Set<String>
    ) -> RouterGroup<Context> {
        for caller in callers.subtracting(self.callers.known).sorted() {
            logger.notice(
                "no public key for a caller: its calls will be refused", metadata: ["caller": "\(caller)", "routes": "/internal/\(path)"]
            )
        }
        let group = path.isEmpty ? "internal" : "internal/\(path)"
        return routes.group(RouterPath(group)).add(
            middleware: RequireCaller(callers, keys: self.callers, maxBodyBytes: config.server.maxBodyBytes)
        )
    }

    /// The application: database and HTTP client run as services, migrations run before the server listens.
    package func makeApplication<Context: ServiceRequestContext>(
        routes: RouteTable<Context>,
        migrations: [Migration],
        services: [any Service] = [],
        onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
    ) -> Application<RouterResponder<Context>> where Context.Source == ApplicationRequestContextSource {
        routes.checkPublicRoutes(service: name, ownPaths: HealthController<Context>.paths)
        routes.answerUnsupportedMethods()
        var app = Application(
            router: routes.router,
            configuration: .init(address: .hostname(config.server.host, port: config.server.port), serverName: name),
            services: [postgres, database.monitor, HTTPClientService(client: http)] + services,
            onServerRunning: onServerRunning,
            logger: logger
        )
        let postgres = self.postgres
        let logger = self.logger
        let runner = MigrationRunner(migrations)
        app.beforeServerStarts {
            try await runner.run(on: postgres, logger: logger)
        }
        return app
    }
}

extension RouteTable where Context: ServiceRequestContext {
    /// Request id first (so every later log line and error has it), then metrics, errors, body limit.
    package func addStandardMiddleware(metrics: ServiceMetrics, maxBodyBytes: Int, routeBodyLimits: [String: Int] = [:]) {
        add(middleware: RequestIDMiddleware<Context>())
        add(middleware: HTTPMetricsMiddleware<Context>(metrics: metrics))
        add(middleware: ErrorMiddleware<Context>())
        add(middleware: BodyLimitMiddleware<Context>(maxBytes: maxBodyBytes, routeLimits: routeBodyLimits))
    }
}
