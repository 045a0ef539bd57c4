import Foundation
import PostgresNIO

/// Connection settings parsed from a `postgres://user:password@host:port/database` URL.
package struct DatabaseConfig: Sendable {
    package var host: String
    package var port: Int
    package var username: String
    package var password: String?
    package var database: String
    package var maxConnections: Int
    /// How long the health check's `SELECT 1` may take; two slower checks in a row count as the
    /// database being unavailable (`DatabaseMonitor`). `DATABASE_CHECK_TIMEOUT_MS`.
    package var checkTimeout: Duration = .seconds(1)

    package init(host: String, port: Int, username: String, password: String?, database: String, maxConnections: Int = 20) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.maxConnections = maxConnections
    }

    package init(url raw: String, variable: String = "DATABASE_URL", maxConnections: Int = 20) throws {
        guard let components = URLComponents(string: raw),
            let scheme = components.scheme, scheme == "postgres" || scheme == "postgresql",
            let host = components.host, !host.isEmpty,
            let user = components.user, !user.isEmpty
        else {
            throw ConfigurationError(variable: variable, problem: "must look like postgres://user:password@host:5432/database")
        }
        let database = String(components.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty else {
            throw ConfigurationError(variable: variable, problem: "must name a database after the host, e.g. /auth")
        }
        self.init(
            host: host,
            port: components.port ?? 5432,
            username: user.removingPercentEncoding ?? user,
            password: components.password.map { $0.removingPercentEncoding ?? $0 },
            database: database,
            maxConnections: maxConnections
        )
    }

    package init(settings: Settings) throws {
        let pool = try settings.int("DATABASE_MAX_CONNECTIONS", default: 20, range: 1...500)
        try self.init(url: try settings.requiredString("DATABASE_URL", isSecret: true), maxConnections: pool)
        try readCheckTimeout(settings)
    }

    /// `DATABASE_CHECK_TIMEOUT_MS` (default 1000): a busier machine may need more before a slow answer
    /// is taken for an outage.
    package mutating func readCheckTimeout(_ settings: Settings) throws {
        checkTimeout = .milliseconds(try settings.int("DATABASE_CHECK_TIMEOUT_MS", default: 1_000, range: 100...60_000))
    }

    package var clientConfiguration: PostgresClient.Configuration {
        var configuration = PostgresClient.Configuration(
            host: host,
            port: port,
            username: username,
            password: password,
            database: database,
            tls: .disable
        )
        configuration.options.maximumConnections = maxConnections
        configuration.options.connectTimeout = .seconds(5)
        return configuration
    }
}
