import Logging
import PostgresNIO

/// A service's database: the connection pool, guarded by a `DatabaseMonitor` so that a database
/// that has gone away costs a request about a second (503 `DATABASE_UNAVAILABLE`) instead of a
/// hang, and service resumes by itself when it returns. Repositories use this, never the pool.
package struct Database: Sendable {
    package let client: PostgresClient
    package let monitor: DatabaseMonitor

    package init(client: PostgresClient, monitor: DatabaseMonitor) {
        self.client = client
        self.monitor = monitor
    }

    /// Runs `query` on a connection leased for exactly this call and reads every row before
    /// returning. `PostgresClient.query` releases its lease when the row stream finishes, and a
    /// statement that fails after its row description (`INSERT … RETURNING` hitting a unique
    /// constraint) never finished it: each such failure kept a connection until the pool was dry.
    @discardableResult
    package func query(_ query: PostgresQuery, logger: Logger) async throws -> QueryRows {
        try await guarded { [client] in
            try await client.withConnection { connection in
                QueryRows(rows: try await connection.query(query, logger: logger).collect())
            }
        }
    }

    /// Runs `body` in a transaction; the closure's own errors come out as they were thrown.
    package func transaction<Result: Sendable>(
        logger: Logger,
        _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        try await guarded { [client] in try await client.transaction(logger: logger, body) }
    }

    /// Fails at once while the database is known to be down, and abandons `operation` (a wait for a
    /// pooled connection, or a query on a dying one) as soon as the monitor sees it go.
    private func guarded<Result: Sendable>(_ operation: @escaping @Sendable () async throws -> Result) async throws -> Result {
        guard monitor.isAvailable else { throw DatabaseUnavailable() }
        let monitor = self.monitor
        return try await Abandon.run(operation, when: { await monitor.waitUntilUnavailable() }, throwing: { DatabaseUnavailable() })
    }
}

/// The rows of a finished query.
package struct QueryRows: Sendable, Sequence {
    package let rows: [PostgresRow]

    package func makeIterator() -> IndexingIterator<[PostgresRow]> { rows.makeIterator() }

    package var count: Int { rows.count }

    package func decode<Column: PostgresDecodable>(_ type: Column.Type) throws -> [Column] {
        try rows.map { try $0.decode(type) }
    }

    package func decode<each Column: PostgresDecodable>(_ type: (repeat each Column).Type) throws -> [(repeat each Column)] {
        try rows.map { try $0.decode(type) }
    }
}

/// The database could not be reached; rendered as 503 `DATABASE_UNAVAILABLE`.
package struct DatabaseUnavailable: Error {
    package init() {}
}

extension Error {
    /// True for failures that mean "the database is not there", not "the query was wrong".
    package var isDatabaseConnectionFailure: Bool {
        switch self {
        case is DatabaseUnavailable:
            return true
        case let error as PSQLError:
            switch error.code {
            case .serverClosedConnection, .clientClosedConnection, .connectionError, .uncleanShutdown, .poolClosed:
                return true
            case .server:
                // Class 08 (connection exception) and 57P0x (shutdown, cannot connect now).
                let state = error.serverInfo?[.sqlState] ?? ""
                return state.hasPrefix("08") || state.hasPrefix("57P0")
            default:
                return false
            }
        default:
            return false
        }
    }
}
