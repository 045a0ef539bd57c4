import Foundation
import HTTPTypes
import Logging
import PostgresNIO
import ServiceCore

/// Stripe Billing's recurring events, applied to billing's own records through `SubscriptionLedger`
/// (the only writer of subscription state) on the webhook's transaction, after its event id was
/// recorded as new (`processed_webhooks`, so each event applies once):
///
/// | event | effect |
/// |---|---|
/// | `checkout.session.completed` (`mode=subscription`) | the Stripe subscription is linked to the tenant |
/// | `invoice.paid` | a `kind = 'invoice'` payment (once per invoice id), then `payment_approved`: `active`, the plan, and the invoice line's period |
/// | `invoice.payment_failed` | an `active` subscription becomes `past_due` (`payment_failed`) |
/// | `customer.subscription.updated` | `past_due`/`unpaid` → `past_due`; `canceled` → `canceled`; `active` syncs `cancel_at_period_end` and the plan (`provider_updated`) |
/// | `customer.subscription.deleted` | `canceled` (`provider_canceled`) |
///
/// Whose subscription it is: billing's link (`stripe_subscriptions`, made at checkout), else the
/// `tenant_id`/`plan` metadata billing put on the subscription, else the customer (`stripe_customers`).
/// Stripe delivers events in any order: each Stripe subscription keeps the `created` of the last event
/// applied to it, and an older one changes no state (a late `invoice.paid` still records its payment:
/// the money was taken).
struct StripeRecurringEvents: Sendable {
    let ledger: SubscriptionLedger
    let catalog: PlanCatalog

    /// The webhook's answer: `applied`, or `ignored` (not billing's, or older than what was applied).
    func apply(_ event: StripeWebhookEvent, now: Date, on connection: PostgresConnection, logger: Logger) async throws -> String {
        let parties: (subscriptionID: String?, customerID: String?, owner: StripeWebhookEvent.Owner?) =
            switch event.kind {
            case .checkoutCompleted(let completed): (completed.subscriptionID, completed.customerID, completed.owner)
            case .invoicePaid(let invoice), .invoicePaymentFailed(let invoice): (invoice.subscriptionID, invoice.customerID, invoice.owner)
            case .subscriptionUpdated(let subscription), .subscriptionDeleted(let subscription):
                (subscription.subscriptionID, subscription.customerID, subscription.owner)
            case nil: (nil, nil, nil)
            }
        let (customerID, owner) = (parties.customerID, parties.owner)
        guard let subscriptionID = parties.subscriptionID,
            let tenantID = try await tenant(subscriptionID: subscriptionID, owner: owner, customerID: customerID, on: connection, logger: logger)
        else {
            logger.notice("Stripe event for a subscription billing cannot place; ignored", metadata: ["stripe_event": "\(event.id)", "type": "\(event.type)"])
            return "ignored"
        }
        try await SubscriptionLedger.lockTenant(tenantID, on: connection, logger: logger)
        if let customerID { try await Self.linkCustomer(customerID, to: tenantID, on: connection, logger: logger) }
        // The link, made on first sight and locked for this event; its last applied event's time.
        let rows = try await connection.query(
            """
            INSERT INTO stripe_subscriptions (subscription_id, tenant_id, customer_id) VALUES (\(subscriptionID), \(tenantID), \(customerID))
            ON CONFLICT (subscription_id) DO UPDATE SET customer_id = coalesce(excluded.customer_id, stripe_subscriptions.customer_id)
            RETURNING last_event_at
            """,
            logger: logger
        ).collect()
        let lastApplied = try rows.first?.decode(Date?.self) ?? nil
        let stale = lastApplied.map { event.created < $0 } ?? false

        var changed = false
        var stripeStatus: String?
        switch event.kind {
        case .checkoutCompleted, nil:
            changed = true  // the link itself
        case .invoicePaid(let invoice):
            let plan = try await plan(of: invoice.price, owner: owner, tenantID: tenantID, on: connection, logger: logger)
            changed = try await recordPayment(invoice, tenantID: tenantID, plan: plan, now: now, on: connection, logger: logger)
            if !stale { changed = try await paid(invoice, tenantID: tenantID, plan: plan, now: now, on: connection, logger: logger) || changed }
        case .invoicePaymentFailed(let invoice):
            if !stale { changed = try await failed(tenantID: tenantID, reference: invoice.invoiceID, now: now, on: connection, logger: logger) }
        case .subscriptionUpdated(let subscription):
            stripeStatus = subscription.status
            if !stale { changed = try await updated(subscription, tenantID: tenantID, now: now, on: connection, logger: logger) }
        case .subscriptionDeleted(let subscription):
            stripeStatus = subscription.status
            if !stale { changed = try await ended(tenantID: tenantID, reference: subscription.subscriptionID, now: now, on: connection, logger: logger) }
        }
        if stale {
            logger.info("Stripe event older than the last applied to its subscription; state kept", metadata: ["stripe_event": "\(event.id)"])
            return changed ? "applied" : "ignored"
        }
        if case .checkoutCompleted = event.kind {
            // A checkout is the subscription's start, not news about its state: it orders nothing.
        } else {
            try await connection.query(
                """
                UPDATE stripe_subscriptions SET last_event_at = \(event.created), status = coalesce(\(stripeStatus), status), updated_at = now()
                WHERE subscription_id = \(subscriptionID)
                """,
                logger: logger
            )
        }
        return changed ? "applied" : "ignored"
    }

    /// Records `customerID` as the tenant's Stripe customer (what the customer portal opens).
    static func linkCustomer(_ customerID: String, to tenantID: UUID, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query(
            """
            INSERT INTO stripe_customers (tenant_id, customer_id) VALUES (\(tenantID), \(customerID))
            ON CONFLICT (tenant_id) DO UPDATE SET customer_id = excluded.customer_id, updated_at = now()
            """,
            logger: logger
        )
    }

    /// The tenant's Stripe subscription while billing's subscription is paid through it (`active`,
    /// `past_due`; with `unlessEnding`, not already cancelled for the period's end).
    static func liveSubscription(of tenantID: UUID, in database: Database, logger: Logger, unlessEnding: Bool = false) async throws -> String? {
        let rows = try await database.query(
            """
            SELECT l.subscription_id FROM stripe_subscriptions l JOIN subscriptions s ON s.tenant_id = l.tenant_id
            WHERE l.tenant_id = \(tenantID) AND coalesce(l.status, 'active') NOT IN ('canceled', 'incomplete_expired')
                AND s.status IN ('active', 'past_due') AND NOT (s.cancel_at_period_end AND \(unlessEnding))
            ORDER BY l.updated_at DESC LIMIT 1
            """,
            logger: logger
        )
        return try rows.decode(String.self).first
    }

    // MARK: - Whose, and which plan

    private func tenant(
        subscriptionID: String, owner: StripeWebhookEvent.Owner?, customerID: String?, on connection: PostgresConnection, logger: Logger
    ) async throws -> UUID? {
        let linked = try await connection.query("SELECT tenant_id FROM stripe_subscriptions WHERE subscription_id = \(subscriptionID)", logger: logger)
            .collect()
        if let tenant = try linked.first?.decode(UUID.self) { return tenant }
        if let owner { return owner.tenantID }
        guard let customerID else { return nil }
        let customers = try await connection.query(
            "SELECT tenant_id FROM stripe_customers WHERE customer_id = \(customerID) ORDER BY updated_at DESC LIMIT 1", logger: logger
        ).collect()
        return try customers.first?.decode(UUID.self)
    }

    /// The plan a price names (its `lookup_key`, else its `metadata.plan`), else the metadata billing
    /// put on the subscription, else the tenant's current plan: only payable plans of the catalogue.
    private func plan(
        of price: StripeWebhookEvent.Price?, owner: StripeWebhookEvent.Owner?, tenantID: UUID, on connection: PostgresConnection, logger: Logger
    ) async throws -> String? {
        for candidate in [price?.lookupKey, price?.plan, owner?.plan] {
            if let candidate, catalog.payable(candidate) != nil { return candidate }
        }
        return try await ledger.load(tenantID, on: connection, logger: logger).flatMap { catalog.payable($0.plan)?.id }
    }

    // MARK: - Invoices

    /// A paid invoice as a payment in billing's ledger, once per invoice id: the checkout's own
    /// pending payment for the subscription's first invoice, a new `invoice` payment for each renewal.
    private func recordPayment(
        _ invoice: StripeWebhookEvent.Invoice, tenantID: UUID, plan: String?, now: Date, on connection: PostgresConnection, logger: Logger
    ) async throws -> Bool {
        guard let amount = invoice.amount, amount.minorUnits > 0, let plan else { return false }
        let known = try await connection.query(
            "SELECT 1 FROM payments WHERE provider = 'stripe' AND provider_invoice_id = \(invoice.invoiceID)", logger: logger
        ).collect()
        guard known.isEmpty else { return false }
        let providerID = invoice.paymentIntentID ?? invoice.invoiceID
        if let checkout = invoice.owner?.paymentID {
            let settled = try await connection.query(
                """
                UPDATE payments SET status = 'approved', provider_payment_id = \(providerID), provider_invoice_id = \(invoice.invoiceID),
                    amount = \(amount.minorUnits), currency = \(amount.currency), plan = \(plan), approved_at = \(now),
                    period_start = \(invoice.periodStart), period_end = \(invoice.periodEnd), processing_until = NULL, updated_at = now()
                WHERE id = \(checkout) AND tenant_id = \(tenantID) AND provider = 'stripe' AND provider_invoice_id IS NULL
                    AND status IN ('processing', 'pending')
                RETURNING id
                """,
                logger: logger
            ).collect()
            if !settled.isEmpty { return true }
        }
        try await connection.query(
            """
            INSERT INTO payments (
                id, tenant_id, plan, provider, kind, provider_payment_id, provider_invoice_id, status, status_detail, amount, currency,
                payment_method, created_at, approved_at, period_start, period_end
            ) VALUES (
                \(UUID()), \(tenantID), \(plan), 'stripe', 'invoice', \(providerID), \(invoice.invoiceID), 'approved', 'invoice_paid',
                \(amount.minorUnits), \(amount.currency), 'stripe_invoice', \(now), \(now), \(invoice.periodStart), \(invoice.periodEnd)
            )
            """,
            logger: logger
        )
        return true
    }

    /// `invoice.paid`: active on the plan, for the period the invoice bills; never a period moved back.
    private func paid(
        _ invoice: StripeWebhookEvent.Invoice, tenantID: UUID, plan: String?, now: Date, on connection: PostgresConnection, logger: Logger
    ) async throws -> Bool {
        guard let plan else { return false }
        let current = try await ledger.load(tenantID, on: connection, logger: logger)
        var updated = SubscriptionLedger.activated(current, tenantID: tenantID, plan: plan, now: now)
        if let start = invoice.periodStart, let end = invoice.periodEnd, end > start {
            updated.currentPeriodStart = start
            updated.currentPeriodEnd = end
        }
        // Whether it ends at the period's end is the subscription's (customer.subscription.updated), not the invoice's.
        updated.cancelAtPeriodEnd = current?.cancelAtPeriodEnd ?? false
        if let current, current.status == .active, current.plan == plan, let held = current.currentPeriodEnd, let end = updated.currentPeriodEnd,
            held >= end
        {
            return false
        }
        return try await ledger.record(
            .paymentApproved, from: current, to: updated, cause: .webhook, reference: invoice.invoiceID, at: now, on: connection, logger: logger
        )
    }

    /// `invoice.payment_failed` (or a subscription turned `past_due`/`unpaid`): an active period is unpaid now.
    private func failed(tenantID: UUID, reference: String, now: Date, on connection: PostgresConnection, logger: Logger) async throws -> Bool {
        guard let current = try await ledger.load(tenantID, on: connection, logger: logger), current.status == .active else { return false }
        var updated = current
        updated.status = .pastDue
        updated.pastDueSince = now
        return try await ledger.record(.paymentFailed, from: current, to: updated, cause: .webhook, reference: reference, at: now, on: connection, logger: logger)
    }

    // MARK: - Subscriptions

    private func updated(
        _ subscription: StripeWebhookEvent.Subscription, tenantID: UUID, now: Date, on connection: PostgresConnection, logger: Logger
    ) async throws -> Bool {
        switch subscription.status {
        case "past_due", "unpaid":
            return try await failed(tenantID: tenantID, reference: subscription.subscriptionID, now: now, on: connection, logger: logger)
        case "canceled", "incomplete_expired":
            return try await ended(tenantID: tenantID, reference: subscription.subscriptionID, now: now, on: connection, logger: logger)
        case "active", "trialing":
            guard let current = try await ledger.load(tenantID, on: connection, logger: logger), current.status == .active || current.status == .pastDue
            else { return false }
            var updated = current
            updated.cancelAtPeriodEnd = subscription.cancelAtPeriodEnd
            if subscription.cancelAtPeriodEnd { updated.pendingPlan = nil }
            for candidate in [subscription.price?.lookupKey, subscription.price?.plan, subscription.owner?.plan] {
                if let candidate, catalog.payable(candidate) != nil {
                    updated.plan = candidate
                    break
                }
            }
            if updated.plan != current.plan { updated.pendingPlan = nil }
            guard updated != current else { return false }
            return try await ledger.record(
                .providerUpdated, from: current, to: updated, cause: .webhook, reference: subscription.subscriptionID, at: now, on: connection,
                logger: logger
            )
        default:
            // incomplete (the first payment under way), paused: nothing billing's states express.
            return false
        }
    }

    /// `customer.subscription.deleted`: Stripe ended it, so billing's ends now too.
    private func ended(tenantID: UUID, reference: String, now: Date, on connection: PostgresConnection, logger: Logger) async throws -> Bool {
        guard let current = try await ledger.load(tenantID, on: connection, logger: logger),
            SubscriptionStateMachine.next(from: current.status, on: .providerCanceled) != nil
        else { return false }
        var updated = current
        updated.status = .canceled
        updated.canceledAt = now
        updated.pendingPlan = nil
        return try await ledger.record(.providerCanceled, from: current, to: updated, cause: .webhook, reference: reference, at: now, on: connection, logger: logger)
    }
}
