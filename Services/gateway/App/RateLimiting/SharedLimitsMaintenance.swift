import Foundation
import Logging
import PostgresNIO
import ServiceCore
import ServiceLifecycle

/// Keeps the shared-limits database usable: applies the gateway's migrations (retrying while the
/// database is unreachable, so the gateway starts and fails open meanwhile), then every minute
/// drops windows that can no longer affect a decision.
struct SharedLimitsMaintenance: Service {
    let postgres: PostgresClient
    let database: Database
    let windowSeconds: Int
    let logger: Logger

    func run() async throws {
        let runner = MigrationRunner(GatewayMigrations.all)
        while !Task.isShuttingDownGracefully {
            do {
                // The pool waits long for a server that is not there; the monitor knows sooner.
                guard database.monitor.isAvailable else { throw DatabaseUnavailable() }
                try await cancelWhenGracefulShutdown { try await runner.run(on: postgres, logger: logger) }
                break
            } catch {
                logger.warning("shared rate limits: migrations not applied yet, retrying", metadata: ["error": "\(error)"])
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(2)) }
            }
        }
        while !Task.isShuttingDownGracefully {
            let now = Int(Date().timeIntervalSince1970)
            let oldest = Int64(now / windowSeconds * windowSeconds - 2 * windowSeconds)
            do {
                _ = try await database.query("DELETE FROM rate_limit_windows WHERE window_start < \(oldest)", logger: logger)
            } catch {
                logger.debug("shared rate limits: cleanup failed", metadata: ["error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(60)) }
        }
    }
}
