import Logging
import PostgresNIO
import ServiceLifecycle

/// How a worker that drains a work queue kept in PostgreSQL (`OutboxRelay`, `MailSender`) paces
/// itself; each worker has its own defaults.
package struct QueueWorkerConfiguration: Sendable {
    /// The longest sleep between looks for due items when no commit wakes the worker.
    package var pollInterval: Duration
    /// Items claimed, and worked on side by side, per look.
    package var batchSize: Int
    package var retry: OutboxRetryPolicy
    /// How long a claimed item stays with its worker; must outlast the work on a whole batch.
    package var lease: Duration
    /// Finished items are deleted this long after they were written.
    package var retention: Duration

    package init(pollInterval: Duration = .seconds(1), batchSize: Int, retry: OutboxRetryPolicy = OutboxRetryPolicy(), lease: Duration, retention: Duration) {
        precondition(batchSize > 0, "queue worker: batch size must be positive")
        self.pollInterval = pollInterval
        self.batchSize = batchSize
        self.retry = retry
        self.lease = lease
        self.retention = retention
    }
}

/// The life of such a worker: take due batches until one comes back short, then sleep up to the
/// poll interval unless a commit's `pg_notify` on `channel` (from this replica or another) wakes it
/// at once; now and then refresh the backlog gauge and purge old history; keep trying while the
/// database is away. Graceful shutdown lets the batch in flight finish before `run` returns.
/// Also drives chat's knowledge-base ingestion worker.
package struct QueueWorkerLoop: Sendable {
    /// How many finished items one purge statement deletes at most.
    static let purgeChunk = 1_000

    /// Names the worker in its log lines.
    var name: String
    var channel: String
    var database: Database
    var configuration: QueueWorkerConfiguration
    var logger: Logger

    package init(name: String, channel: String, database: Database, configuration: QueueWorkerConfiguration, logger: Logger) {
        self.name = name
        self.channel = channel
        self.database = database
        self.configuration = configuration
        self.logger = logger
    }

    /// `workOnDueBatch` returns how many items it took, once their outcomes are recorded;
    /// `countPending` counts the unfinished items for `recordPending`; `purgeChunk` deletes up to
    /// `purgeChunk` finished items older than its argument and returns how many.
    package func run(
        workOnDueBatch: () async throws -> Int,
        countPending: PostgresQuery,
        recordPending: (Int) -> Void,
        purgeChunk: (Duration) async throws -> Int
    ) async {
        let (pollInterval, batchSize) = (configuration.pollInterval, configuration.batchSize)
        let wakeUp = RelayWakeUp()
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await listenForCommits(wakeUp) }
            var failing = false
            // Counting a large backlog is not free: the gauge need not be fresher than this.
            var gauge = Throttle(interval: .seconds(10))
            var purge = Throttle(interval: .seconds(3_600))
            while !Task.isShuttingDownGracefully && !Task.isCancelled {
                let taken: Int
                do {
                    taken = try await workOnDueBatch()
                    if failing { logger.notice("\(name) reaches its database again") }
                    failing = false
                } catch {
                    taken = 0
                    if !failing && !Task.isCancelled { logUnreachableTables(error) }
                    failing = true
                }
                if !failing && gauge.isDue(), let rows = try? await database.query(countPending, logger: logger),
                    let count = try? rows.decode(Int.self).first
                {
                    recordPending(count)
                }
                // A full batch: more may be due right now.
                if taken == batchSize { continue }
                if !failing && purge.isDue() {
                    do {
                        while try await purgeChunk(configuration.retention) == Self.purgeChunk {}
                    } catch {
                        logger.warning("\(name) could not purge its history", metadata: ["error": "\(String(reflecting: error))"])
                    }
                }
                await withGracefulShutdownHandler {
                    await wakeUp.wait(timeout: pollInterval)
                } onGracefulShutdown: {
                    wakeUp.signal()
                }
            }
            group.cancelAll()
        }
    }

    /// Signals at every notification on `channel` until cancelled, subscribing again after the
    /// database was away (polling covers the gap).
    private func listenForCommits(_ wakeUp: RelayWakeUp) async {
        while !Task.isCancelled {
            if database.monitor.isAvailable {
                do {
                    try await database.client.withConnection { connection in
                        try await connection.listen(on: channel) { notifications in
                            // Commits from before the subscription took effect were announced to nobody.
                            wakeUp.signal()
                            for try await _ in notifications { wakeUp.signal() }
                        }
                    }
                } catch where !Task.isCancelled {
                    logger.debug("\(name) stopped listening for commits; polling meanwhile", metadata: ["error": "\(error)"])
                } catch {}
            }
            try? await Task.sleep(for: configuration.pollInterval)
        }
    }

    private func logUnreachableTables(_ error: any Error) {
        // At start-up the worker may look before the service's migrations have created its tables.
        let undefinedTable = (error as? PSQLError)?.serverInfo?[.sqlState] == PostgresError.Code.undefinedTable.raw
        logger.log(
            level: undefinedTable ? .debug : .warning,
            "\(name) cannot reach its tables; retrying every poll interval",
            metadata: ["error": "\(String(reflecting: error))"]
        )
    }
}
