import Foundation
import InternalAPI
import Logging
import PostgresNIO

/// A service's side of sending events: which services receive each event type, and writing an
/// event into the outbox inside the transaction that makes the change it reports. `OutboxRelay`
/// delivers what is written here.
package struct Outbox: Sendable {
    /// The PostgreSQL notification channel on which a commit that wrote events wakes the relays.
    static let channel = "outbox_events"

    /// Subscriber names per event type; a type declared with no subscriber is dropped quietly.
    let subscribers: [EventType: [String]]
    /// How to reach each subscriber, by service name.
    let clients: [String: InternalClient]

    /// `routes` is the service's whole routing table, fixed at start: each event type it publishes
    /// and the services that receive it (each by its `InternalClient`, whose `service` names it in
    /// the outbox). An event type missing from it is a programming error that `enqueue` refuses.
    package init(routes: [EventType: [InternalClient]]) {
        var clients: [String: InternalClient] = [:]
        for client in routes.values.joined() {
            if let known = clients[client.service] {
                precondition(known.baseURL == client.baseURL, "outbox subscriber \(client.service) has two addresses")
            }
            clients[client.service] = client
        }
        self.clients = clients
        self.subscribers = routes.mapValues { $0.map(\.service) }
    }

    /// Writes `event` and one pending delivery per subscriber on `connection`, which must be in
    /// the caller's transaction: the event then exists exactly when the change it reports does.
    /// The request id in `logger` travels with the event, so the receiver logs under the same id.
    ///
    /// The relays are woken by `pg_notify`, which PostgreSQL delivers only when the transaction
    /// commits (never for a rollback) and to every replica: an in-process signal sent here would
    /// fire before the commit, so the relay would find nothing yet and sleep until its next poll.
    package func enqueue(_ event: EventEnvelope, on connection: PostgresConnection, logger: Logger) async throws {
        guard let subscribers = subscribers[event.type] else { throw OutboxError.unroutedEventType(event.type) }
        guard !subscribers.isEmpty else {
            logger.debug("event type has no subscribers; not written", metadata: ["event_type": "\(event.type)"])
            return
        }
        let payload = String(decoding: try JSONCoding.encoder.encode(event.payload), as: UTF8.self)
        let requestID = logger[metadataKey: RequestID.metadataKey]?.description
        try await connection.query(
            """
            WITH event AS (
                INSERT INTO outbox_events (id, type, source, occurred_at, payload, request_id)
                VALUES (\(event.id), \(event.type.rawValue), \(event.source), \(event.occurredAt), \(payload)::jsonb, \(requestID))
                RETURNING id
            ), deliveries AS (
                INSERT INTO outbox_deliveries (event_id, subscriber)
                SELECT event.id, subscriber FROM event, unnest(\(subscribers)::text[]) AS subscriber
            )
            SELECT pg_notify(\(Self.channel), '')
            """,
            logger: logger
        )
    }
}

package enum OutboxError: Error, CustomStringConvertible {
    /// `enqueue` was given a type the routing table does not declare.
    case unroutedEventType(EventType)

    package var description: String {
        switch self {
        case .unroutedEventType(let type): "event type \(type) is not in the outbox's routing table"
        }
    }
}
