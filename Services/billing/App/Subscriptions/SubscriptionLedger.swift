import Foundation
import HTTPTypes
import InternalAPI
import Logging
import PostgresNIO
import ServiceCore

/// A subscription row with the lifecycle columns, read for update.
struct SubscriptionRecord: Sendable, Equatable {
    var id: UUID
    var tenantID: UUID
    var plan: String
    var status: SubscriptionStatus
    var trialEndsAt: Date?
    var currentPeriodStart: Date?
    var currentPeriodEnd: Date?
    var cancelAtPeriodEnd: Bool
    var pendingPlan: String?
    var pastDueSince: Date?
    var canceledAt: Date?
}

/// The only writer of subscription state: every change goes through `record`, which checks it
/// against `SubscriptionStateMachine`, writes the row, records the transition with its cause and
/// publishes it through the outbox, all on the caller's transaction.
struct SubscriptionLedger: Sendable {
    let outbox: Outbox

    /// Serialises everything that changes one tenant's billing (payments, webhooks, the scheduler,
    /// cancellation, trial start and withdrawal): the same lock `PostgresBillingRepository` takes.
    static func lockTenant(_ tenantID: UUID, on connection: PostgresConnection, logger: Logger) async throws {
        try await PostgresBillingRepository.lockTrial(of: tenantID, on: connection, logger: logger)
    }

    static let columns = """
        id, tenant_id, plan, status, trial_ends_at, current_period_start, current_period_end, cancel_at_period_end,
        pending_plan, past_due_since, canceled_at
        """

    static func decode(_ rows: [PostgresRow]) throws -> [SubscriptionRecord] {
        try rows.map { row in
            let (id, tenant, plan, status, trialEnds, start, end, cancel, pending, pastDue, canceled) = try row.decode(
                (UUID, UUID, String, String, Date?, Date?, Date?, Bool, String?, Date?, Date?).self
            )
            guard let status = SubscriptionStatus(rawValue: status) else { throw AppError.internalError("unknown subscription status \(status)") }
            return SubscriptionRecord(
                id: id, tenantID: tenant, plan: plan, status: status, trialEndsAt: trialEnds, currentPeriodStart: start, currentPeriodEnd: end,
                cancelAtPeriodEnd: cancel, pendingPlan: pending, pastDueSince: pastDue, canceledAt: canceled
            )
        }
    }

    func load(_ tenantID: UUID, on connection: PostgresConnection, logger: Logger) async throws -> SubscriptionRecord? {
        let rows = try await connection.query(
            "SELECT \(unescaped: Self.columns) FROM subscriptions WHERE tenant_id = \(tenantID) FOR UPDATE", logger: logger
        ).collect()
        return try Self.decode(Array(rows)).first
    }

    /// Writes `updated` as the result of `event` on `current` (nil: the tenant had no subscription
    /// row, as after a withdrawn trial) and records the transition. Returns false, changing nothing,
    /// when the state machine does not allow `event` from `current`'s status.
    @discardableResult
    func record(
        _ event: SubscriptionEvent, from current: SubscriptionRecord?, to updated: SubscriptionRecord, cause: TransitionCause, reference: String?,
        at now: Date, on connection: PostgresConnection, logger: Logger
    ) async throws -> Bool {
        if let current {
            guard SubscriptionStateMachine.next(from: current.status, on: event) == updated.status else {
                logger.debug("subscription event not allowed in this state", metadata: ["event": "\(event.rawValue)", "status": "\(current.status.rawValue)"])
                return false
            }
        } else {
            guard event == .paymentApproved, updated.status == .active else { return false }
        }
        try await connection.query(
            """
            INSERT INTO subscriptions (
                id, tenant_id, plan, status, trial_ends_at, current_period_start, current_period_end, cancel_at_period_end,
                pending_plan, past_due_since, canceled_at, updated_at
            ) VALUES (
                \(updated.id), \(updated.tenantID), \(updated.plan), \(updated.status.rawValue), \(updated.trialEndsAt),
                \(updated.currentPeriodStart), \(updated.currentPeriodEnd), \(updated.cancelAtPeriodEnd), \(updated.pendingPlan),
                \(updated.pastDueSince), \(updated.canceledAt), now()
            )
            ON CONFLICT (tenant_id) DO UPDATE SET
                plan = excluded.plan, status = excluded.status, trial_ends_at = excluded.trial_ends_at,
                current_period_start = excluded.current_period_start, current_period_end = excluded.current_period_end,
                cancel_at_period_end = excluded.cancel_at_period_end, pending_plan = excluded.pending_plan,
                past_due_since = excluded.past_due_since, canceled_at = excluded.canceled_at, updated_at = now()
            """,
            logger: logger
        )
        try await connection.query(
            """
            INSERT INTO subscription_transitions (id, tenant_id, from_status, to_status, from_plan, to_plan, event, cause, cause_ref, occurred_at)
            VALUES (\(UUID()), \(updated.tenantID), \(current?.status.rawValue), \(updated.status.rawValue), \(current?.plan), \(updated.plan),
                    \(event.rawValue), \(cause.rawValue), \(reference), \(now))
            """,
            logger: logger
        )
        let changed = SubscriptionChanged(
            tenantId: updated.tenantID, plan: updated.plan, status: updated.status.rawValue, previousPlan: current?.plan,
            previousStatus: current?.status.rawValue, event: event.rawValue, cause: cause.rawValue, currentPeriodEnd: updated.currentPeriodEnd,
            cancelAtPeriodEnd: updated.cancelAtPeriodEnd
        )
        try await outbox.enqueue(try EventEnvelope(type: SubscriptionChanged.type, source: "billing", payload: changed, occurredAt: now), on: connection, logger: logger)
        if event == .paymentApproved {
            let paid = PaymentCompleted(tenantId: updated.tenantID, plan: updated.plan)
            try await outbox.enqueue(try EventEnvelope(type: PaymentCompleted.type, source: "billing", payload: paid, occurredAt: now), on: connection, logger: logger)
        }
        logger.info(
            "subscription transition",
            metadata: [
                "tenant_id": "\(updated.tenantID)", "event": "\(event.rawValue)", "from": "\(current?.status.rawValue ?? "none")",
                "to": "\(updated.status.rawValue)", "cause": "\(cause.rawValue)",
            ]
        )
        return true
    }

    /// The subscription after an approved payment for `plan`: a new period from now, or, when the
    /// same plan is paid again while its period runs, the next period after the current one.
    static func activated(_ current: SubscriptionRecord?, tenantID: UUID, plan: String, now exactly: Date) -> SubscriptionRecord {
        // Periods start on a whole second: events carry their times to the second (as every time on
        // the wire), so a message answered just after the payment must not sort before its period.
        let now = Date(timeIntervalSince1970: exactly.timeIntervalSince1970.rounded(.down))
        var renewal = false
        if let current, current.status == .active, current.plan == plan, let end = current.currentPeriodEnd, end > now { renewal = true }
        let from = renewal ? (current?.currentPeriodEnd ?? now) : now
        let end = Calendar.billing.date(byAdding: .month, value: 1, to: from) ?? from.addingTimeInterval(30 * 86_400)
        var updated = current ?? SubscriptionRecord(
            id: UUID(), tenantID: tenantID, plan: plan, status: .active, trialEndsAt: nil, currentPeriodStart: nil, currentPeriodEnd: nil,
            cancelAtPeriodEnd: false, pendingPlan: nil, pastDueSince: nil, canceledAt: nil
        )
        updated.plan = plan
        updated.status = .active
        updated.currentPeriodStart = renewal ? (current?.currentPeriodStart ?? now) : now
        updated.currentPeriodEnd = end
        updated.cancelAtPeriodEnd = false
        updated.pendingPlan = nil
        updated.pastDueSince = nil
        updated.canceledAt = nil
        return updated
    }
}

extension Calendar {
    /// Periods are whole calendar months in UTC.
    static let billing: Calendar = {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar
    }()
}
