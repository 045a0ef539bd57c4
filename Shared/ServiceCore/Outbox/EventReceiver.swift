import Foundation
import HTTPTypes
import Hummingbird
import InternalAPI
import Logging
import PostgresNIO

/// A service's side of receiving events: `POST /internal/events`, applying each event once
/// however many times the sender's relay delivers it.
package struct EventReceiver: Sendable {
    /// Applies one event on `connection`, inside the transaction that records it as processed: its
    /// changes commit exactly when the record does. Throwing rolls both back and answers an error,
    /// so the sender retries later (an `AppError` keeps its status; anything else is a 500).
    package typealias Handler = @Sendable (_ event: EventEnvelope, _ connection: PostgresConnection, _ logger: Logger) async throws -> Void

    let database: Database
    let handlers: [EventType: Handler]
    /// The one service allowed to deliver each type (the one that emits it); a type not listed
    /// here is accepted from any caller the route lets in.
    let senders: [EventType: String]

    package init(database: Database, handlers: [EventType: Handler], senders: [EventType: String] = [:]) {
        self.database = database
        self.handlers = handlers
        self.senders = senders
    }

    /// Adds `POST events` to `group`, which should be the service's internal group
    /// (`ServiceFoundation.internalGroup`, accepting the services whose events it handles), so
    /// the route is `EventEnvelope.deliveryPath` and only those services get in.
    package func addRoutes<Context: RequestContext>(to group: RouterGroup<Context>) {
        group.post("events") { request, context -> JSONResponse<EventReceipt> in
            let event = try await request.decodeJSON(as: EventEnvelope.self, context: context)
            return JSONResponse(try await receive(event, logger: context.logger))
        }
    }

    /// Applies `event` unless it was applied before; unknown types are acknowledged and logged, so
    /// that an event this release does not handle cannot block the sender's queue.
    package func receive(_ event: EventEnvelope, logger: Logger) async throws -> EventReceipt {
        var invalid: [String: [String]] = [:]
        if event.type.rawValue.isEmpty { invalid["type"] = ["must not be empty"] }
        if event.source.isEmpty { invalid["source"] = ["must not be empty"] }
        guard invalid.isEmpty else { throw AppError.validation(invalid) }

        var eventLogger = logger
        eventLogger[metadataKey: "event_id"] = .string(event.id.uuidString.lowercased())
        eventLogger[metadataKey: "event_type"] = .string(event.type.rawValue)
        eventLogger[metadataKey: "event_source"] = .string(event.source)
        let logger = eventLogger
        if let sender = senders[event.type], VerifiedCaller.name != sender {
            logger.notice("event delivered by a service that does not emit it", metadata: ["caller": "\(VerifiedCaller.name ?? "none")"])
            throw AppError(.forbidden, code: "EVENT_SENDER_NOT_ALLOWED", detail: "Events of type \(event.type) are accepted only from \(sender)")
        }
        guard let handler = handlers[event.type] else {
            logger.warning("event of a type this service does not handle; acknowledged and ignored")
            return EventReceipt(status: .ignored)
        }
        let applied = try await database.transaction(logger: logger) { connection in
            // A concurrent delivery of the same event waits here for this one's outcome, then
            // finds the row (duplicate) or, if this one rolled back, applies it itself.
            let inserted = try await connection.query(
                """
                INSERT INTO processed_events (event_id, type, source) VALUES (\(event.id), \(event.type.rawValue), \(event.source))
                ON CONFLICT (event_id) DO NOTHING
                RETURNING event_id
                """,
                logger: logger
            ).collect()
            guard !inserted.isEmpty else { return false }
            try await handler(event, connection, logger)
            return true
        }
        if !applied { logger.debug("event delivered again; already applied") }
        return EventReceipt(status: applied ? .applied : .duplicate)
    }
}
