import Logging
import PostgresNIO

extension PostgresClient {
    /// Runs `body` in a transaction and rethrows the closure's own error rather than PostgresNIO's
    /// `PostgresTransactionError` wrapper, so domain errors thrown inside keep their status.
    package func transaction<Result: Sendable>(
        logger: Logger,
        _ body: (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        do {
            return try await withTransaction(logger: logger) { connection in try await body(connection) }
        } catch let error as PostgresTransactionError {
            throw error.closureError ?? error.beginError ?? error.commitError ?? error
        }
    }
}

extension Error {
    /// True when PostgreSQL rejected a write for breaking a unique constraint.
    package var isUniqueViolation: Bool {
        (self as? PSQLError)?.serverInfo?[.sqlState] == PostgresError.Code.uniqueViolation.raw
    }
}
