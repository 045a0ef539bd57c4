import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// Knows, within about a second, whether PostgreSQL answers, by asking it `SELECT 1` on a
/// connection of its own every `interval`. The pool cannot tell us: while it cannot connect it
/// queues requests (for up to a minute before its circuit breaker opens), so a request would hang
/// instead of failing. `Database` uses this to fail fast and to abandon waits once the database is
/// known to be gone.
package final class DatabaseMonitor: Service, Sendable {
    private struct State {
        var available = true
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var nextWaiter = 0
    }

    private let configuration: PostgresConnection.Configuration
    private let interval: Duration
    private let timeout: Duration
    private let logger: Logger
    private let state = Mutex(State())

    package init(database: DatabaseConfig, interval: Duration = .milliseconds(500), timeout: Duration? = nil, logger: Logger) {
        let timeout = timeout ?? database.checkTimeout
        var configuration = PostgresConnection.Configuration(
            host: database.host, port: database.port, username: database.username, password: database.password,
            database: database.database, tls: .disable
        )
        // Bounded by the driver itself: an abandoned connect that succeeded later would leave a
        // connection nobody closes.
        configuration.options.connectTimeout = .init(timeout)
        self.configuration = configuration
        self.interval = interval
        self.timeout = timeout
        self.logger = logger
    }

    /// Whether the last check reached the database (true until a check says otherwise).
    package var isAvailable: Bool { state.withLock { $0.available } }

    /// Returns once the database is seen unavailable (at once if it is now), or when cancelled.
    package func waitUntilUnavailable() async {
        let id = state.withLock { state in
            defer { state.nextWaiter += 1 }
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state in
                    if !state.available || Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }

    package func run() async throws {
        var connection: PostgresConnection?
        defer { if let connection { Task { try? await connection.close() } } }
        var connectionID = 0
        var slowChecks = 0
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let reached: Bool
            let started = ContinuousClock.now
            do {
                let current: PostgresConnection
                if let connection {
                    current = connection
                } else {
                    connectionID += 1
                    let configuration = self.configuration
                    let logger = self.logger
                    let id = connectionID
                    current = try await PostgresConnection.connect(
                        on: MultiThreadedEventLoopGroup.singleton.any(), configuration: configuration, id: id, logger: logger
                    ).get()
                    connection = current
                }
                let logger = self.logger
                _ = try await withDeadline { try await current.query("SELECT 1", logger: logger) }
                reached = true
                slowChecks = 0
            } catch {
                if let broken = connection { Task { try? await broken.close() } }
                connection = nil
                // A refused or broken connection fails at once and means the database is gone. A check
                // that only ran out of time may mean a busy machine: it takes two in a row.
                let slow = ContinuousClock.now - started >= timeout
                slowChecks = slow ? slowChecks + 1 : 0
                reached = slow && slowChecks < 2
            }
            record(reached)
            try? await Task.sleep(for: interval)
        }
    }

    /// `operation` within `timeout`, abandoned (not awaited) when it overruns.
    private func withDeadline<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        let timeout = self.timeout
        return try await Abandon.run(operation, when: { try? await Task.sleep(for: timeout) }, throwing: { TimeoutError() })
    }

    private func record(_ reached: Bool) {
        let (changed, waiters) = state.withLock { state in
            let changed = state.available != reached
            state.available = reached
            guard !reached else { return (changed, [CheckedContinuation<Void, Never>]()) }
            defer { state.waiters.removeAll() }
            return (changed, Array(state.waiters.values))
        }
        for waiter in waiters { waiter.resume() }
        if changed {
            if reached {
                logger.notice("database reachable again")
            } else {
                logger.error("database unreachable: answering 503 until it is back")
            }
        }
    }
}

