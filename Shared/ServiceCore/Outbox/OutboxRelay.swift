import Foundation
import HTTPTypes
import InternalAPI
import Logging
import PostgresNIO
import ServiceLifecycle

/// Delivers the events `Outbox.enqueue` wrote to each subscriber's `POST /internal/events`, with
/// a caller token and the request id of the request that caused the event, until each answers
/// 2xx: at least once, never lost, retried with backoff (`OutboxRetryPolicy`). Run one in every
/// replica of a publishing service, among the application's services.
///
/// Several relays share the work through a lease rather than a row lock held across the call: a
/// short statement claims due deliveries with `FOR UPDATE SKIP LOCKED` and moves their
/// `next_attempt_at` one lease ahead, then the calls run with no transaction open. Holding the
/// lock instead would keep a transaction and a pooled connection per batch for as long as the
/// slowest subscriber takes to answer (or to time out), holding back vacuum, and a batch's calls
/// could not run side by side. The lease outlives every subscriber client's timeout, so one call
/// per delivery is in flight at a time; a relay that dies mid-call gives its claims back when the
/// lease runs out, and the receiver's `processed_events` absorbs the repeat that may follow.
///
/// A relay sleeps up to `pollInterval` between looks, and is woken at once by the `pg_notify` of
/// any transaction that enqueued (in this replica or another). Graceful shutdown lets the batch in
/// flight finish and record its outcomes before `run` returns; a hard cancellation leaves its
/// claims to their leases. Either way nothing is lost.
package struct OutboxRelay: Service {
    package typealias Configuration = QueueWorkerConfiguration

    let database: Database
    let clients: [String: InternalClient]
    let configuration: Configuration
    let metrics: OutboxRelayMetrics
    let logger: Logger

    /// Batches of 50 called side by side, a lease of 60 s (beyond every internal client's timeout),
    /// events kept 7 days after every subscriber has had them.
    package static let defaultConfiguration = Configuration(batchSize: 50, lease: .seconds(60), retention: .seconds(7 * 86_400))

    package init(outbox: Outbox, database: Database, configuration: Configuration = defaultConfiguration, metrics: ServiceMetrics, logger: Logger) {
        for client in outbox.clients.values {
            precondition(
                Duration.nanoseconds(client.timeout.nanoseconds) < configuration.lease,
                "outbox relay: the lease must exceed \(client.service)'s timeout, or a slow call could be made twice at once"
            )
        }
        self.database = database
        self.clients = outbox.clients
        self.configuration = configuration
        self.metrics = OutboxRelayMetrics(subscribers: outbox.clients.keys, factory: metrics.factory)
        self.logger = logger
    }

    package func run() async throws {
        let loop = QueueWorkerLoop(name: "outbox relay", channel: Outbox.channel, database: database, configuration: configuration, logger: logger)
        await loop.run(
            workOnDueBatch: deliverDueBatch,
            countPending: "SELECT count(*)::int FROM outbox_deliveries WHERE delivered_at IS NULL",
            recordPending: metrics.recordPending,
            purgeChunk: purgeDelivered(olderThan:)
        )
    }

    /// Claims up to a batch of due deliveries and calls their subscribers side by side; returns how
    /// many it claimed, once every call has ended and its outcome is recorded.
    func deliverDueBatch() async throws -> Int {
        let claim = UUID()
        let rows = try await database.query(
            """
            WITH due AS (
                SELECT event_id, subscriber FROM outbox_deliveries
                WHERE delivered_at IS NULL AND next_attempt_at <= now()
                ORDER BY next_attempt_at
                LIMIT \(configuration.batchSize)
                FOR UPDATE SKIP LOCKED
            ), claimed AS (
                UPDATE outbox_deliveries d
                SET next_attempt_at = now() + \(configuration.lease.inSeconds) * interval '1 second', claim_id = \(claim)
                FROM due
                WHERE d.event_id = due.event_id AND d.subscriber = due.subscriber
                RETURNING d.event_id, d.subscriber, d.attempts
            )
            SELECT c.event_id, c.subscriber, c.attempts, e.type, e.source, e.occurred_at, e.payload::text, e.request_id
            FROM claimed c JOIN outbox_events e ON e.id = c.event_id
            """,
            logger: logger
        )
        let deliveries = try rows.decode((UUID, String, Int, String, String, Date, String, String?).self).map(ClaimedDelivery.init)
        await withTaskGroup(of: Void.self) { group in
            for delivery in deliveries {
                group.addTask { await self.deliver(delivery, claim: claim) }
            }
        }
        return deliveries.count
    }

    private func deliver(_ delivery: ClaimedDelivery, claim: UUID) async {
        var logger = self.logger
        logger[metadataKey: RequestID.metadataKey] = .string(delivery.requestID ?? delivery.eventID.uuidString.lowercased())
        logger[metadataKey: "event_id"] = .string(delivery.eventID.uuidString.lowercased())
        if case .success(let envelope) = delivery.envelope { logger[metadataKey: "event_type"] = .string(envelope.type.rawValue) }
        logger[metadataKey: "subscriber"] = .string(delivery.subscriber)
        do {
            guard let client = clients[delivery.subscriber] else { throw UnknownSubscriber(name: delivery.subscriber) }
            try await client.send(.post, EventEnvelope.deliveryPath, body: try delivery.envelope.get(), logger: logger)
        } catch {
            // Cancelled mid-call: whether it arrived is unknown, and the lease hands it back.
            guard !Task.isCancelled else { return }
            await recordFailure(of: delivery, claim: claim, error: error, logger: logger)
            return
        }
        metrics.recordDelivered(to: delivery.subscriber)
        do {
            // Whoever holds the claim now, the subscriber has it: a newer claim's failure must not undo this.
            try await database.query(
                """
                UPDATE outbox_deliveries SET delivered_at = now(), attempts = attempts + 1, claim_id = NULL
                WHERE event_id = \(delivery.eventID) AND subscriber = \(delivery.subscriber) AND delivered_at IS NULL
                """,
                logger: logger
            )
        } catch {
            logger.warning(
                "event delivered but not recorded; it will be delivered again when its lease ends",
                metadata: ["error": "\(String(reflecting: error))"]
            )
        }
    }

    private func recordFailure(of delivery: ClaimedDelivery, claim: UUID, error: any Error, logger: Logger) async {
        let reason = Self.classify(error)
        let failures = delivery.attempts + 1
        let delay = configuration.retry.delay(afterFailures: failures)
        let message = String("\(error)".prefix(1_000))
        metrics.recordFailure(to: delivery.subscriber, reason: reason)
        let metadata: Logger.Metadata = ["error": "\(message)", "reason": "\(reason.rawValue)", "attempts": "\(failures)", "retry_in": "\(delay)"]
        if reason == .rejected || reason == .other {
            logger.error("event cannot be delivered until the subscriber or this service is fixed; retrying", metadata: metadata)
        } else if failures == 1 {
            logger.warning("event delivery failed; retrying with backoff", metadata: metadata)
        } else {
            logger.debug("event delivery failed again", metadata: metadata)
        }
        do {
            try await database.query(
                """
                UPDATE outbox_deliveries
                SET attempts = attempts + 1, last_error = \(message), claim_id = NULL,
                    next_attempt_at = now() + \(delay.inSeconds) * interval '1 second'
                WHERE event_id = \(delivery.eventID) AND subscriber = \(delivery.subscriber) AND claim_id = \(claim)
                """,
                logger: logger
            )
        } catch {
            logger.warning("could not record a failed delivery; retried when its lease ends", metadata: ["error": "\(String(reflecting: error))"])
        }
    }

    static func classify(_ error: any Error) -> DeliveryFailure {
        switch error as? InternalCallError {
        case .notConnected?, .unavailable?: .unreachable
        case .timedOut?: .timeout
        case .rejected(_, let status, _)?: status >= 500 || [408, 409, 425, 429].contains(status) ? .retryableStatus : .rejected
        case .invalidResponse?, nil: .other
        }
    }

    /// Deletes up to a chunk of events that every subscriber has had and that are older than `age`
    /// (their deliveries go with them); returns how many. Undelivered events are kept however old.
    package func purgeDelivered(olderThan age: Duration) async throws -> Int {
        try await database.query(
            """
            DELETE FROM outbox_events WHERE id IN (
                SELECT e.id FROM outbox_events e
                WHERE e.created_at < now() - \(age.inSeconds) * interval '1 second'
                    AND NOT EXISTS (SELECT 1 FROM outbox_deliveries d WHERE d.event_id = e.id AND d.delivered_at IS NULL)
                ORDER BY e.created_at
                LIMIT \(QueueWorkerLoop.purgeChunk)
            )
            RETURNING id
            """,
            logger: logger
        ).count
    }
}

/// A delivery this relay holds the lease of, with its event.
struct ClaimedDelivery: Sendable {
    var eventID: UUID
    var subscriber: String
    /// Failed attempts so far (an undelivered delivery has had no other kind).
    var attempts: Int
    var requestID: String?
    /// What to send; a stored event that cannot be read back fails its attempts like a refused call.
    var envelope: Result<EventEnvelope, any Error>

    init(_ row: (UUID, String, Int, String, String, Date, String, String?)) {
        let (eventID, subscriber, attempts, type, source, occurredAt, payload, requestID) = row
        (self.eventID, self.subscriber, self.attempts, self.requestID) = (eventID, subscriber, attempts, requestID)
        envelope = Result {
            EventEnvelope(
                id: eventID, type: EventType(rawValue: type), occurredAt: occurredAt, source: source,
                payload: try JSONCoding.decoder.decode([String: JSONValue].self, from: Data(payload.utf8))
            )
        }
    }
}

/// A delivery row names a subscriber this release's routing table no longer has.
struct UnknownSubscriber: Error, CustomStringConvertible {
    var name: String
    var description: String { "no client for subscriber \(name) in this release's outbox routes" }
}
