import Logging
import PostgresNIO

/// One numbered schema change, kept as SQL next to the service that owns the tables.
package struct Migration: Sendable {
    package let version: Int
    package let name: String
    package let statements: [String]

    package init(_ version: Int, _ name: String, _ statements: [String]) {
        self.version = version
        self.name = name
        self.statements = statements
    }
}

/// Applies pending migrations in order, once, even when several replicas start together.
///
/// A session-level advisory lock serialises runners; each migration and its row in
/// `schema_migrations` commit in one transaction, so a crash never leaves a half-applied version.
package struct MigrationRunner: Sendable {
    package let migrations: [Migration]
    /// Advisory lock key; one per database is enough since each service owns its database.
    private let lockKey: Int64 = 0x5355_4954_455F_4D47

    package init(_ migrations: [Migration]) {
        precondition(
            Set(migrations.map(\.version)).count == migrations.count,
            "duplicate migration versions"
        )
        self.migrations = migrations.sorted { $0.version < $1.version }
    }

    package func run(on client: PostgresClient, logger: Logger) async throws {
        try await client.withConnection { connection in
            try await connection.query("SELECT pg_advisory_lock(\(lockKey))", logger: logger)
            do {
                try await applyPending(on: connection, logger: logger)
            } catch {
                _ = try? await connection.query("SELECT pg_advisory_unlock(\(lockKey))", logger: logger)
                throw error
            }
            try await connection.query("SELECT pg_advisory_unlock(\(lockKey))", logger: logger)
        }
    }

    private func applyPending(on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version integer PRIMARY KEY,
                name text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """,
            logger: logger
        )
        var applied: [Int: String] = [:]
        for try await (version, name) in try await connection.query(
            "SELECT version, name FROM schema_migrations",
            logger: logger
        ).decode((Int, String).self) {
            applied[version] = name
        }
        for migration in migrations {
            if let name = applied[migration.version] {
                if name != migration.name {
                    logger.warning(
                        "migration name differs from the one recorded",
                        metadata: ["version": "\(migration.version)", "recorded": "\(name)", "code": "\(migration.name)"]
                    )
                }
                continue
            }
            try await connection.query("BEGIN", logger: logger)
            do {
                for statement in migration.statements {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query(
                    "INSERT INTO schema_migrations (version, name) VALUES (\(migration.version), \(migration.name))",
                    logger: logger
                )
                try await connection.query("COMMIT", logger: logger)
            } catch {
                _ = try? await connection.query("ROLLBACK", logger: logger)
                throw error
            }
            logger.info("applied migration", metadata: ["version": "\(migration.version)", "name": "\(migration.name)"])
        }
    }
}
