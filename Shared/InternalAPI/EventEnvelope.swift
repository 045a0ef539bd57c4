import Foundation

/// The name of a kind of event, `<source>.<what_happened>` (`auth.email_verified`): a value of its
/// own so that event types are declared once, as constants next to their payloads, not retyped.
package struct EventType: RawRepresentable, Hashable, Codable, Sendable, ExpressibleByStringLiteral, CustomStringConvertible {
    package var rawValue: String

    package init(rawValue: String) {
        self.rawValue = rawValue
    }

    package init(stringLiteral value: String) {
        self.rawValue = value
    }

    package var description: String { rawValue }
}

/// any service → its subscribers (`POST /internal/events`): one event, delivered at least once
/// by the sender's outbox relay. Receivers apply it at most once by `id`; events may arrive in any
/// order, so a handler must not assume it sees them in `occurredAt` order.
package struct EventEnvelope: Codable, Sendable, Equatable {
    /// Where every subscriber receives events.
    package static let deliveryPath = "/internal/events"

    /// Chosen by the sender once, kept across every retry: the receiver's key for "seen it".
    package var id: UUID
    package var type: EventType
    /// When the change happened in the sender (to the second on the wire, like every timestamp).
    package var occurredAt: Date
    /// The sending service's name.
    package var source: String
    /// The event's facts, in the suite's snake_case; its shape is the event type's contract.
    package var payload: [String: JSONValue]

    package init(id: UUID = UUID(), type: EventType, occurredAt: Date = Date(), source: String, payload: [String: JSONValue]) {
        self.id = id
        self.type = type
        self.occurredAt = occurredAt
        self.source = source
        self.payload = payload
    }
}

/// A receiver's answer to a delivered event; any of them acknowledges it (200).
package struct EventReceipt: Codable, Sendable, Equatable {
    package enum Status: String, Codable, Sendable {
        /// First delivery: the handler ran and its changes committed.
        case applied
        /// Seen before (the sender did not get the first acknowledgement): nothing done again.
        case duplicate
        /// No handler for this type here: acknowledged so that it is not retried forever.
        case ignored
    }

    package var status: Status

    package init(status: Status) {
        self.status = status
    }
}

/// `auth.email_verified`, auth → tenancy: a user confirmed their email (tenancy marks the
/// onboarding step of the user's tenant).
package struct EmailVerified: Codable, Sendable, Equatable {
    package var userId: UUID
    package var tenantId: UUID
    package var email: String

    package static let type: EventType = "auth.email_verified"

    package init(userId: UUID, tenantId: UUID, email: String) {
        self.userId = userId
        self.tenantId = tenantId
        self.email = email
    }
}
