import Foundation
import LocalPostgres
import Logging
import PostgresNIO
import ServiceCore
import Synchronization

/// The PostgreSQL the tests use: `TEST_DATABASE_URL` when given, otherwise a throwaway cluster
/// started once per test process (as the `postgres` user when running as root) and removed at exit.
/// Every caller gets a database of its own, so tests never see each other's rows.
package enum TestPostgres {
    private struct Server: Sendable {
        var host: String
        var port: Int
        var username: String
        var password: String?
        var adminDatabase: String
    }

    private static let server = Task<Server, any Error> {
        if let url = ProcessInfo.processInfo.environment["TEST_DATABASE_URL"], !url.isEmpty {
            let config = try DatabaseConfig(url: url, variable: "TEST_DATABASE_URL")
            return Server(host: config.host, port: config.port, username: config.username, password: config.password, adminDatabase: config.database)
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("suite-tests-\(getpid())-\(UUID().uuidString.prefix(8))").path
        // Every test runs at once, each with services of its own: each service's pool, its database
        // monitor and its outbox listeners hold connections.
        let cluster = LocalPostgresCluster(
            directory: directory,
            port: try ChildProcess.freePort(),
            binDirectory: try LocalPostgresCluster.locateBinaries(),
            maxConnections: 1_000
        )
        try cluster.start()
        Cleanup.register {
            cluster.stop(mode: "immediate")
            cluster.remove()
        }
        return Server(host: "127.0.0.1", port: cluster.port, username: LocalPostgresCluster.superuser, password: nil, adminDatabase: "postgres")
    }

    /// Test-side clients only report real failures.
    private static var quietLogger: Logger {
        var logger = Logger(label: "test-postgres")
        logger.logLevel = .error
        return logger
    }

    /// A new, empty database on the test server.
    package static func freshDatabase(_ label: String = "t") async throws -> DatabaseConfig {
        let server = try await server.value
        let name = "\(label.lowercased().filter { $0.isLetter || $0.isNumber })_\(UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: ""))"
        let admin = PostgresClient(
            configuration: .init(
                host: server.host, port: server.port, username: server.username, password: server.password,
                database: server.adminDatabase, tls: .disable
            ),
            backgroundLogger: quietLogger
        )
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await admin.run() }
            defer { group.cancelAll() }
            try await admin.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \"\(name)\""))
        }
        return DatabaseConfig(host: server.host, port: server.port, username: server.username, password: server.password, database: name, maxConnections: 8)
    }

    /// Runs `body` with a client connected to `database`.
    package static func withClient<T: Sendable>(_ database: DatabaseConfig, _ body: (PostgresClient) async throws -> T) async throws -> T {
        let client = PostgresClient(configuration: database.clientConfiguration, backgroundLogger: quietLogger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            return try await body(client)
        }
    }

    /// Runs `body` with a monitored `Database` on `database`, as a service would have it.
    /// Its health check allows 5 s, as `TestStack`'s services do: beside every other test, two slow
    /// `SELECT 1`s in a row would otherwise mark a healthy database down (`DatabaseUnavailable`).
    package static func withDatabase<T: Sendable>(_ database: DatabaseConfig, _ body: (Database) async throws -> T) async throws -> T {
        var database = database
        database.checkTimeout = .seconds(5)
        let client = PostgresClient(configuration: database.clientConfiguration, backgroundLogger: quietLogger)
        let monitor = DatabaseMonitor(database: database, logger: quietLogger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            group.addTask { try await monitor.run() }
            defer { group.cancelAll() }
            return try await body(Database(client: client, monitor: monitor))
        }
    }

    /// The single integer a query such as `SELECT count(*)::int …` returns.
    package static func count(_ database: DatabaseConfig, _ query: PostgresQuery) async throws -> Int {
        try await withClient(database) { client in
            for try await value in try await client.query(query).decode(Int.self) { return value }
            return 0
        }
    }
}

/// Work to do when the test process exits (stopping the throwaway cluster).
package enum Cleanup {
    private static let actions = Mutex<(installed: Bool, pending: [@Sendable () -> Void])>((false, []))

    package static func register(_ action: @escaping @Sendable () -> Void) {
        let install = actions.withLock { state in
            state.pending.append(action)
            defer { state.installed = true }
            return !state.installed
        }
        if install {
            atexit { Cleanup.runAll() }
        }
    }

    static func runAll() {
        let pending = actions.withLock { state in
            defer { state.pending = [] }
            return state.pending
        }
        for action in pending { action() }
    }
}
