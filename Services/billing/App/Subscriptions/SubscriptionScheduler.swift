import Foundation
import HTTPTypes
import InternalAPI
import Logging
import PostgresNIO
import ServiceCore
import ServiceLifecycle

/// Moves subscriptions as time passes, every `interval`: trials ending (3 days ahead) and ended,
/// periods ending (to `past_due`, or `canceled` when cancelled for the period's end, after a
/// scheduled downgrade takes effect), grace running out (`canceled`), and payments still pending
/// re-read from the provider (found by billing's reference when the provider's id never came back).
/// With several replicas one runs each pass: it holds a PostgreSQL
/// advisory lock for the pass, and the others skip theirs. Time comes from `clock`, so tests move it.
struct SubscriptionScheduler: Service {
    let database: Database
    let ledger: SubscriptionLedger
    let applier: ProviderPaymentApplier
    let provider: any PaymentProvider
    let clock: any BillingClock
    let graceDays: Int
    let interval: Duration
    let logger: Logger

    /// How long before a trial's end `billing.trial_ending` goes out.
    static let trialWarning: TimeInterval = 3 * 86_400
    static let lockKey: Int64 = 9_000_951

    func run() async throws {
        await repeatUntilShutdown(every: interval) {
            do {
                _ = try await runPass()
            } catch {
                logger.warning("subscription scheduler pass failed; retried next pass", metadata: ["error": "\(String(reflecting: error))"])
            }
        }
    }

    /// One pass; nil when another replica holds the pass, else how many changes it made.
    func runPass() async throws -> Int? {
        try await database.client.withConnection { connection in
            let locked = try await connection.query("SELECT pg_try_advisory_lock(\(Self.lockKey))", logger: logger).collect()
            guard try locked.first?.decode(Bool.self) == true else { return nil }
            do {
                let changes = try await moveSubscriptions() + reconcilePayments() + reconcileUnidentifiedPayments()
                _ = try await connection.query("SELECT pg_advisory_unlock(\(Self.lockKey))", logger: logger).collect()
                return changes
            } catch {
                _ = try? await connection.query("SELECT pg_advisory_unlock(\(Self.lockKey))", logger: logger).collect()
                throw error
            }
        }
    }

    /// Every subscription with something due at `now`, each in its own transaction under its tenant's lock.
    func moveSubscriptions() async throws -> Int {
        let now = clock.now()
        let warnFrom = now.addingTimeInterval(Self.trialWarning)
        let graceStart = now.addingTimeInterval(-TimeInterval(graceDays) * 86_400)
        let due = try await database.query(
            """
            SELECT tenant_id FROM subscriptions
            WHERE (status = 'trialing' AND trial_ends_at <= \(warnFrom) AND trial_ending_notified_at IS NULL)
               OR (status = 'trialing' AND trial_ends_at <= \(now) AND trial_ended_notified_at IS NULL)
               OR (status = 'active' AND current_period_end <= \(now))
               OR (status = 'past_due' AND past_due_since <= \(graceStart))
            LIMIT 500
            """,
            logger: logger
        ).decode(UUID.self)
        var changes = 0
        for tenantID in due {
            changes += try await database.transaction(logger: logger) { connection in
                try await SubscriptionLedger.lockTenant(tenantID, on: connection, logger: logger)
                guard let subscription = try await ledger.load(tenantID, on: connection, logger: logger) else { return 0 }
                return try await move(subscription, now: now, on: connection)
            }
        }
        return changes
    }

    private func move(_ current: SubscriptionRecord, now: Date, on connection: PostgresConnection) async throws -> Int {
        var changes = 0
        switch current.status {
        case .trialing:
            guard let endsAt = current.trialEndsAt else { return 0 }
            let flags = try await connection.query(
                "SELECT trial_ending_notified_at IS NOT NULL, trial_ended_notified_at IS NOT NULL FROM subscriptions WHERE id = \(current.id)",
                logger: logger
            ).collect()
            guard let flag = flags.first else { return 0 }
            let (warned, ended) = try flag.decode((Bool, Bool).self)
            if !warned && endsAt > now && endsAt <= now.addingTimeInterval(Self.trialWarning) {
                try await ledger.outbox.enqueue(
                    try EventEnvelope(type: TrialEnding.type, source: "billing", payload: TrialEnding(tenantId: current.tenantID, trialEndsAt: endsAt), occurredAt: now),
                    on: connection, logger: logger
                )
                try await connection.query("UPDATE subscriptions SET trial_ending_notified_at = \(now) WHERE id = \(current.id)", logger: logger)
                changes += 1
            }
            if !ended && endsAt <= now {
                try await ledger.record(.trialExpired, from: current, to: current, cause: .scheduler, reference: nil, at: now, on: connection, logger: logger)
                try await ledger.outbox.enqueue(
                    try EventEnvelope(type: TrialEnded.type, source: "billing", payload: TrialEnded(tenantId: current.tenantID, trialEndsAt: endsAt), occurredAt: now),
                    on: connection, logger: logger
                )
                try await connection.query(
                    "UPDATE subscriptions SET trial_ended_notified_at = \(now), trial_ending_notified_at = coalesce(trial_ending_notified_at, \(now)) WHERE id = \(current.id)",
                    logger: logger
                )
                changes += 1
            }
        case .active:
            guard let end = current.currentPeriodEnd, end <= now else { return 0 }
            var subscription = current
            if subscription.cancelAtPeriodEnd {
                var canceled = subscription
                canceled.status = .canceled
                canceled.canceledAt = end
                try await ledger.record(.periodEndedCanceled, from: subscription, to: canceled, cause: .scheduler, reference: nil, at: now, on: connection, logger: logger)
                return 1
            }
            if let pending = subscription.pendingPlan {
                var downgraded = subscription
                downgraded.plan = pending
                downgraded.pendingPlan = nil
                try await ledger.record(.scheduledPlanApplied, from: subscription, to: downgraded, cause: .scheduler, reference: nil, at: now, on: connection, logger: logger)
                subscription = downgraded
                changes += 1
            }
            var overdue = subscription
            overdue.status = .pastDue
            overdue.pastDueSince = end
            try await ledger.record(.periodEndedUnpaid, from: subscription, to: overdue, cause: .scheduler, reference: nil, at: now, on: connection, logger: logger)
            changes += 1
        case .pastDue:
            guard let since = current.pastDueSince, since.addingTimeInterval(TimeInterval(graceDays) * 86_400) <= now else { return 0 }
            var canceled = current
            canceled.status = .canceled
            canceled.canceledAt = now
            try await ledger.record(.graceElapsed, from: current, to: canceled, cause: .scheduler, reference: nil, at: now, on: connection, logger: logger)
            changes += 1
        case .incomplete, .canceled:
            break
        }
        return changes
    }

    /// Payments the provider has an id for but billing still holds unsettled (a lost webhook, a
    /// timed-out answer whose notification came with the id): re-read and applied as the provider says.
    func reconcilePayments() async throws -> Int {
        let rows = try await database.query(
            """
            SELECT provider_payment_id FROM payments
            WHERE status IN ('pending', 'processing') AND provider_payment_id IS NOT NULL AND provider = \(provider.kind.rawValue)
                AND (processing_until IS NULL OR processing_until < \(clock.now()))
            ORDER BY created_at LIMIT 100
            """,
            logger: logger
        ).decode(String.self)
        var changes = 0
        for id in rows {
            do {
                let reported = try await provider.payment(id: id, logger: logger)
                let now = clock.now()
                let outcome = try await database.transaction(logger: logger) { connection in
                    try await applier.apply(reported, cause: .scheduler, now: now, on: connection, logger: logger)
                }
                if outcome == .applied { changes += 1 }
            } catch let error as PaymentProviderError {
                logger.notice("reconciliation could not read a payment; next pass", metadata: ["provider_payment_id": "\(id)", "error": "\(error)"])
            }
        }
        return changes
    }

    /// How long a card payment the provider cannot find stays pending before it is `cancelled`
    /// (the call never reached the provider). A later notification of it still applies.
    static let unfoundAfter: TimeInterval = 3_600

    /// Payments whose provider call ended without the provider's id (a timeout, a replica that died
    /// mid-call): looked up at the provider by billing's reference and idempotency key
    /// (`PaymentProvider.findPayment`) and applied as it reports them; a card payment still unknown
    /// to the provider after `unfoundAfter` was never made, and is `cancelled`. MercadoPago hosted
    /// checkouts are looked up for a day (their payments carry the reference); Stripe's are settled
    /// by their invoices' events.
    func reconcileUnidentifiedPayments() async throws -> Int {
        let now = clock.now()
        let rows = try await database.query(
            """
            SELECT id, tenant_id, plan, kind, created_at FROM payments
            WHERE status IN ('pending', 'processing') AND provider_payment_id IS NULL AND provider = \(provider.kind.rawValue)
                AND (kind = 'card' OR (kind = 'checkout' AND provider = 'mercadopago' AND created_at > \(now.addingTimeInterval(-86_400))))
                AND (processing_until IS NULL OR processing_until < \(now))
            ORDER BY created_at LIMIT 100
            """,
            logger: logger
        ).decode((UUID, UUID, String, String, Date).self)
        var changes = 0
        for (id, tenantID, plan, kind, createdAt) in rows {
            let reference = PaymentReference(tenantID: tenantID, plan: plan, paymentID: id)
            do {
                let found = try await provider.findPayment(reference: reference, idempotencyKey: CardPayments.providerKey(id, kind: kind), logger: logger)
                let now = clock.now()
                if let found {
                    let outcome = try await database.transaction(logger: logger) { connection in
                        try await applier.apply(found, cause: .scheduler, now: now, on: connection, logger: logger)
                    }
                    if outcome == .applied { changes += 1 }
                } else if kind == "card", createdAt.addingTimeInterval(Self.unfoundAfter) <= now {
                    let rows = try await database.query(
                        """
                        UPDATE payments SET status = 'cancelled', status_detail = 'not_received_by_provider', processing_until = NULL, updated_at = now()
                        WHERE id = \(id) AND status IN ('pending', 'processing') AND provider_payment_id IS NULL RETURNING id
                        """,
                        logger: logger
                    )
                    changes += rows.count
                }
            } catch let error as PaymentProviderError {
                logger.notice("reconciliation could not look a payment up; next pass", metadata: ["payment_id": "\(id)", "error": "\(error)"])
            }
        }
        return changes
    }
}
