import Foundation
import HTTPTypes
import PostgresNIO
import ServiceCore
import Synchronization
import Testing

@testable import BillingApp

/// Stripe Billing's recurring events on billing's router against a real PostgreSQL, with a local
/// server answering as Stripe's API does, and events signed as Stripe signs them: a subscription
/// checkout, its invoices paid and failed, the subscription changed and deleted, replays and
/// reorderings that change nothing, and a cancellation that Stripe is told about.
@Suite("Stripe recurring billing")
struct StripeRecurringTests {
    static let secret = "whsec_test_recurring"
    static let t0: Int64 = 1_795_986_000
    /// The first period (30 days) and the next.
    static let p0: Int64 = 1_795_986_000
    static let p1: Int64 = p0 + 30 * 86_400
    static let p2: Int64 = p1 + 31 * 86_400

    /// A fake Stripe: Checkout Sessions (the form kept), subscription updates, and a switch to fail them.
    final class FakeStripe: Sendable {
        let checkoutForm = Mutex<[(String, String)]?>(nil)
        let updates = Mutex<[(String, [(String, String)])]>([])
        let failUpdates = Mutex(false)

        func answer(_ request: ProviderTestServer.Received) -> ProviderTestServer.Reply {
            switch (request.method, request.path) {
            case ("POST", "/v1/checkout/sessions"):
                checkoutForm.withLock { $0 = request.form() }
                return .json(200, #"{"id": "cs_test_rec", "object": "checkout.session", "mode": "subscription", "url": "https://checkout.stripe.com/c/pay/cs_test_rec"}"#)
            case ("POST", let path) where path.hasPrefix("/v1/subscriptions/"):
                if failUpdates.withLock({ $0 }) {
                    return .json(500, #"{"error": {"type": "api_error", "message": "Something went wrong on Stripe's end."}}"#)
                }
                updates.withLock { $0.append((path, request.form())) }
                return .json(200, #"{"id": "sub_rec", "object": "subscription", "status": "active", "cancel_at_period_end": true}"#)
            default:
                return .json(404, #"{"error": {"type": "invalid_request_error", "message": "Unrecognized request URL"}}"#)
            }
        }
    }

    // MARK: - Events, as Stripe sends them (API version 2025-03-31)

    static func envelope(_ id: String, _ type: String, created: Int64, _ object: String) -> String {
        #"{"id": "\#(id)", "object": "event", "api_version": "2025-03-31.basil", "type": "\#(type)", "created": \#(created), "livemode": false, "pending_webhooks": 1, "data": {"object": \#(object)}}"#
    }

    static func metadata(_ reference: String) -> String {
        let parsed = PaymentReference(reference)!
        return """
            {"tenant_id": "\(parsed.tenantID.uuidString.lowercased())", "plan": "\(parsed.plan)", "payment_id": "\(parsed.paymentID.uuidString.lowercased())", "reference": "\(reference)"}
            """
    }

    static func checkoutCompleted(_ reference: String, created: Int64) -> String {
        envelope("evt_rec_checkout", "checkout.session.completed", created: created, """
            {"id": "cs_test_rec", "object": "checkout.session", "client_reference_id": "\(reference)", "mode": "subscription",
             "payment_status": "paid", "status": "complete", "customer": "cus_rec", "subscription": "sub_rec", "invoice": "in_rec_1",
             "payment_intent": null, "amount_total": 49990, "currency": "clp", "metadata": \(metadata(reference))}
            """)
    }

    /// An invoice of `sub_rec`; `metadata` nil leaves the subscription's metadata out (billing then goes by its link).
    static func invoice(
        _ event: String, _ type: String = "invoice.paid", invoice: String, created: Int64, start: Int64, end: Int64, amount: Int64 = 49_990,
        metadata: String? = nil, lookupKey: String? = nil
    ) -> String {
        let paid = type == "invoice.paid"
        let details = metadata.map { #", "metadata": \#($0)"# } ?? ""
        let price = lookupKey.map { #""price": {"id": "price_\#($0)", "object": "price", "lookup_key": "\#($0)"}, "# } ?? ""
        return envelope(event, type, created: created, """
            {"id": "\(invoice)", "object": "invoice", "customer": "cus_rec", "currency": "clp", "status": "\(paid ? "paid" : "open")",
             "amount_due": \(amount), "amount_paid": \(paid ? amount : 0), "amount_remaining": \(paid ? 0 : amount), "attempt_count": 1,
             "billing_reason": "subscription_cycle", "period_start": \(start), "period_end": \(start),
             "parent": {"type": "subscription_details", "subscription_details": {"subscription": "sub_rec"\(details)}},
             "payments": {"object": "list", "data": [{"id": "inpay_\(invoice)", "object": "invoice_payment", "payment": {"type": "payment_intent", "payment_intent": "pi_\(invoice)"}}]},
             "lines": {"object": "list", "data": [{"id": "il_\(invoice)", "object": "line_item", \(price)"period": {"start": \(start), "end": \(end)}}]}}
            """)
    }

    static func subscription(
        _ event: String, _ type: String = "customer.subscription.updated", created: Int64, status: String, cancelAtPeriodEnd: Bool = false,
        lookupKey: String = "pro", metadata: String = "{}"
    ) -> String {
        envelope(event, type, created: created, """
            {"id": "sub_rec", "object": "subscription", "customer": "cus_rec", "status": "\(status)", "cancel_at_period_end": \(cancelAtPeriodEnd),
             "metadata": \(metadata),
             "items": {"object": "list", "data": [{"id": "si_rec", "object": "subscription_item", "price": {"id": "price_\(lookupKey)", "object": "price", "lookup_key": "\(lookupKey)"},
              "current_period_start": \(p1), "current_period_end": \(p2)}]}}
            """)
    }

    // MARK: - Helpers

    static func with(_ body: @escaping @Sendable (BillingRouterHarness, FakeStripe, ProviderTestServer) async throws -> Void) async throws {
        let stripe = FakeStripe()
        try await ProviderTestServer.with({ stripe.answer($0) }) { server, _ in
            let overrides = [
                "PAYMENT_PROVIDER": "stripe", "STRIPE_SECRET_KEY": "sk_test_recurring", "STRIPE_API_URL": server.url, "STRIPE_WEBHOOK_SECRET": secret,
            ]
            // The clock at the first event's time, so the subscription's periods are "now".
            try await BillingRouterHarness.with(overrides, clock: ManualClock(Date(timeIntervalSince1970: TimeInterval(t0)))) { harness in
                try await body(harness, stripe, server)
            }
        }
    }

    @discardableResult
    static func deliver(_ payload: String, _ h: BillingRouterHarness, secret: String = secret) async throws -> BillingRouterHarness.Answer {
        let header = StripeSignature.header(payload: Data(payload.utf8), secret: secret, timestamp: Int64(h.clock.now().timeIntervalSince1970))
        return try await h.send(.post, "/api/payments/webhook/stripe", raw: payload, headers: [HTTPField.Name("Stripe-Signature")!: header])
    }

    static func receipt(_ answer: BillingRouterHarness.Answer) throws -> String? {
        guard answer.status == 200 else { return "HTTP \(answer.status): \(String(decoding: answer.body, as: UTF8.self))" }
        return try answer.object()["status"] as? String
    }

    /// Everything billing holds about `tenant`'s subscription and money, as one comparable text.
    static func state(_ h: BillingRouterHarness, _ tenant: UUID) async throws -> [String] {
        var parts: [String] = []
        for query: PostgresQuery in [
            "SELECT row_to_json(s)::text FROM subscriptions s WHERE tenant_id = \(tenant)",
            "SELECT coalesce(json_agg(p ORDER BY created_at, id)::text, '') FROM payments p WHERE tenant_id = \(tenant)",
            "SELECT count(*)::text FROM subscription_transitions WHERE tenant_id = \(tenant)",
            "SELECT count(*)::text FROM outbox_events",
            "SELECT coalesce(json_agg(l ORDER BY subscription_id)::text, '') FROM stripe_subscriptions l WHERE tenant_id = \(tenant)",
        ] {
            parts.append(try await h.value(query, as: String.self) ?? "")
        }
        return parts
    }

    static func date(_ seconds: Int64) -> Date { Date(timeIntervalSince1970: TimeInterval(seconds)) }

    /// Checkout for `plan` as the tenant's owner; the reference Stripe was given.
    static func checkout(_ h: BillingRouterHarness, _ stripe: FakeStripe, tenant: UUID, plan: String = "pro") async throws -> String {
        let answer = try await h.send(.post, "/api/payments/checkout", token: try await h.token(tenant), json: ["plan": plan])
        #expect(answer.status == 201, "\(String(decoding: answer.body, as: UTF8.self))")
        let form = try #require(stripe.checkoutForm.withLock { $0 })
        func value(_ key: String) -> String? { form.first { $0.0 == key }?.1 }
        // A Stripe Billing subscription: monthly, the plan's price inline, billing's reference on the subscription.
        #expect(value("mode") == "subscription")
        #expect(value("line_items[0][price_data][recurring][interval]") == "month")
        #expect(value("line_items[0][price_data][unit_amount]") == "49990")
        #expect(value("subscription_data[metadata][tenant_id]") == tenant.uuidString.lowercased())
        return try #require(value("subscription_data[metadata][reference]"))
    }

    // MARK: - Tests

    @Test func invoicePaymentsPeriodsAndPricesOfBothAPIShapesAreRead() throws {
        // Before 2025-03-31: `payment_intent` on the invoice, the line's `price` expanded.
        let old = try StripeWebhookEvent.parse(Data(Self.envelope("evt_old", "invoice.paid", created: Self.t0, """
            {"id": "in_old", "object": "invoice", "customer": "cus_1", "subscription": "sub_1", "payment_intent": "pi_old", "amount_paid": 19990,
             "currency": "clp", "period_start": \(Self.p0), "period_end": \(Self.p0),
             "lines": {"data": [{"period": {"start": \(Self.p0), "end": \(Self.p1)}, "price": {"id": "price_s", "lookup_key": null, "metadata": {"plan": "starter"}}}]}}
            """).utf8))
        guard case .invoicePaid(let invoice) = old.kind else { Issue.record("\(old)"); return }
        #expect(invoice.paymentIntentID == "pi_old" && invoice.subscriptionID == "sub_1")
        #expect(invoice.periodStart == Self.date(Self.p0) && invoice.periodEnd == Self.date(Self.p1))
        #expect(invoice.price == .init(id: "price_s", lookupKey: nil, plan: "starter"))
        // Since: the PaymentIntent under `payments`, the line's price as an id under `pricing.price_details`.
        let new = try StripeWebhookEvent.parse(Data(Self.envelope("evt_new", "invoice.paid", created: Self.t0, """
            {"id": "in_new", "object": "invoice", "customer": "cus_1", "amount_paid": 19990, "currency": "clp",
             "parent": {"type": "subscription_details", "subscription_details": {"subscription": "sub_1"}},
             "payments": {"data": [{"payment": {"type": "payment_intent", "payment_intent": "pi_new"}}]},
             "lines": {"data": [{"period": {"start": \(Self.p0), "end": \(Self.p1)}, "pricing": {"type": "price_details", "price_details": {"price": "price_n", "product": "prod_1"}}}]}}
            """).utf8))
        guard case .invoicePaid(let paid) = new.kind else { Issue.record("\(new)"); return }
        #expect(paid.paymentIntentID == "pi_new" && paid.price == .init(id: "price_n", lookupKey: nil, plan: nil))
    }

    @Test func theProviderEventsOfTheStateMachine() {
        typealias S = SubscriptionStatus
        #expect(SubscriptionStateMachine.next(from: .active, on: .paymentFailed) == .pastDue)
        for status in [S.trialing, .pastDue, .incomplete, .canceled] {
            #expect(SubscriptionStateMachine.next(from: status, on: .paymentFailed) == nil, "\(status)")
        }
        #expect(SubscriptionStateMachine.next(from: .active, on: .providerUpdated) == .active)
        #expect(SubscriptionStateMachine.next(from: .pastDue, on: .providerUpdated) == .pastDue)
        for status in [S.trialing, .incomplete, .canceled] {
            #expect(SubscriptionStateMachine.next(from: status, on: .providerUpdated) == nil, "\(status)")
        }
        for status in [S.trialing, .active, .pastDue, .incomplete] {
            #expect(SubscriptionStateMachine.next(from: status, on: .providerCanceled) == .canceled, "\(status)")
        }
        #expect(SubscriptionStateMachine.next(from: .canceled, on: .providerCanceled) == nil)
    }

    @Test func invoicesAndSubscriptionChangesMoveTheSubscriptionOnceAndNeverBackwards() async throws {
        try await Self.with { h, stripe, _ in
            let tenant = try await h.trial()
            let reference = try await Self.checkout(h, stripe, tenant: tenant)
            let meta = Self.metadata(reference)

            // The checkout links the Stripe subscription; its first invoice pays the first period.
            #expect(try Self.receipt(await Self.deliver(Self.checkoutCompleted(reference, created: Self.t0), h)) == "applied")
            #expect(try await h.status(of: tenant) == "trialing")
            #expect(try await h.value("SELECT tenant_id FROM stripe_subscriptions WHERE subscription_id = 'sub_rec'", as: UUID.self) == tenant)
            #expect(try await h.value("SELECT customer_id FROM stripe_customers WHERE tenant_id = \(tenant)", as: String.self) == "cus_rec")

            let first = Self.invoice("evt_rec_paid_1", invoice: "in_rec_1", created: Self.t0 + 2, start: Self.p0, end: Self.p1, metadata: meta)
            #expect(try Self.receipt(await Self.deliver(first, h)) == "applied")
            #expect(try await h.status(of: tenant) == "active")
            #expect(try await h.value("SELECT plan FROM subscriptions WHERE tenant_id = \(tenant)", as: String.self) == "pro")
            #expect(try await h.value("SELECT current_period_end FROM subscriptions WHERE tenant_id = \(tenant)", as: Date.self) == Self.date(Self.p1))
            // The checkout's own pending payment is the first invoice's.
            #expect(try await h.count("SELECT count(*)::int FROM payments WHERE tenant_id = \(tenant)") == 1)
            #expect(
                try await h.value(
                    "SELECT status || ' ' || kind || ' ' || provider_payment_id || ' ' || provider_invoice_id FROM payments WHERE tenant_id = \(tenant)",
                    as: String.self
                ) == "approved checkout pi_in_rec_1 in_rec_1"
            )

            // Stripe delivers it again: nothing changes.
            var before = try await Self.state(h, tenant)
            #expect(try Self.receipt(await Self.deliver(first, h)) == "duplicate")
            #expect(try await Self.state(h, tenant) == before)

            // The renewal: a payment of its own, the next period; the owner found through the link alone.
            let renewal = Self.invoice("evt_rec_paid_2", invoice: "in_rec_2", created: Self.t0 + 100, start: Self.p1, end: Self.p2)
            #expect(try Self.receipt(await Self.deliver(renewal, h)) == "applied")
            #expect(try await h.value("SELECT current_period_end FROM subscriptions WHERE tenant_id = \(tenant)", as: Date.self) == Self.date(Self.p2))
            #expect(try await h.count("SELECT count(*)::int FROM payments WHERE tenant_id = \(tenant) AND kind = 'invoice' AND status = 'approved'") == 1)
            let invoices = try await h.send(.get, "/api/payments/invoices", token: try await h.token(tenant))
            #expect(try (invoices.object()["invoices"] as? [Any])?.count == 2)

            // The customer moves to enterprise and cancels for the period's end in Stripe's portal.
            let changed = Self.subscription("evt_rec_upd_2", created: Self.t0 + 150, status: "active", cancelAtPeriodEnd: true, lookupKey: "enterprise")
            #expect(try Self.receipt(await Self.deliver(changed, h)) == "applied")
            let shown = try await h.send(.get, "/api/payments/subscription", token: try await h.token(tenant)).object()
            #expect(shown["status"] as? String == "active" && shown["plan"] as? String == "enterprise")
            #expect(shown["cancel_at_period_end"] as? Bool == true)

            // An older update arriving late (Stripe's order is not guaranteed) changes nothing.
            before = try await Self.state(h, tenant)
            let older = Self.subscription("evt_rec_upd_1", created: Self.t0 + 120, status: "past_due", cancelAtPeriodEnd: false)
            #expect(try Self.receipt(await Self.deliver(older, h)) == "ignored")
            #expect(try await Self.state(h, tenant) == before)

            // A failed renewal: past_due at once.
            let failed = Self.invoice(
                "evt_rec_failed_3", "invoice.payment_failed", invoice: "in_rec_3", created: Self.t0 + 200, start: Self.p2, end: Self.p2 + 30 * 86_400
            )
            #expect(try Self.receipt(await Self.deliver(failed, h)) == "applied")
            #expect(try await h.status(of: tenant) == "past_due")
            #expect(try await h.count("SELECT count(*)::int FROM payments WHERE tenant_id = \(tenant)") == 2)

            // Stripe gives up and deletes the subscription: canceled, and no more access.
            let deleted = Self.subscription("evt_rec_del", "customer.subscription.deleted", created: Self.t0 + 300, status: "canceled", lookupKey: "enterprise")
            #expect(try Self.receipt(await Self.deliver(deleted, h)) == "applied")
            #expect(try await h.status(of: tenant) == "canceled")
            let usage = try await h.send(.get, "/api/payments/usage", token: try await h.token(tenant)).object()
            #expect(usage["chat_allowed"] as? Bool == false)

            // An update older than the deletion, and the failed invoice again: nothing changes.
            before = try await Self.state(h, tenant)
            let late = Self.subscription("evt_rec_upd_late", created: Self.t0 + 250, status: "active", lookupKey: "pro")
            #expect(try Self.receipt(await Self.deliver(late, h)) == "ignored")
            #expect(try Self.receipt(await Self.deliver(failed, h)) == "duplicate")
            #expect(try await Self.state(h, tenant) == before)

            #expect(
                try await h.value(
                    "SELECT string_agg(event || ':' || cause, ',' ORDER BY occurred_at, recorded_at) FROM subscription_transitions WHERE tenant_id = \(tenant)",
                    as: String.self
                ) == "payment_approved:webhook,payment_approved:webhook,provider_updated:webhook,payment_failed:webhook,provider_canceled:webhook"
            )
        }
    }

    @Test func badOldOrMissingSignaturesAndMalformedEventsChangeNothing() async throws {
        try await Self.with { h, stripe, _ in
            let tenant = try await h.trial()
            let reference = try await Self.checkout(h, stripe, tenant: tenant)
            let paid = Self.invoice("evt_rec_sig", invoice: "in_rec_sig", created: Self.t0, start: Self.p0, end: Self.p1, metadata: Self.metadata(reference))
            let before = try await Self.state(h, tenant)
            let webhooks = try await h.count("SELECT count(*)::int FROM processed_webhooks")

            let forged = try await Self.deliver(paid, h, secret: "whsec_someone_else")
            #expect(try forged.status == 400 && forged.error().code == "INVALID_WEBHOOK_SIGNATURE")
            let unsigned = try await h.send(.post, "/api/payments/webhook/stripe", raw: paid)
            #expect(unsigned.status == 400)
            // Signed ten minutes ago: outside Stripe's 300 s tolerance.
            let old = StripeSignature.header(payload: Data(paid.utf8), secret: Self.secret, timestamp: Int64(h.clock.now().timeIntervalSince1970) - 600)
            #expect(try await h.send(.post, "/api/payments/webhook/stripe", raw: paid, headers: [HTTPField.Name("Stripe-Signature")!: old]).status == 400)
            // Signed, but the invoice is not one (no id).
            let malformed = Self.envelope("evt_rec_bad", "invoice.paid", created: Self.t0, #"{"object": "invoice", "amount_paid": 49990}"#)
            let refused = try await Self.deliver(malformed, h)
            #expect(try refused.status == 400 && refused.error().code == "INVALID_NOTIFICATION")

            #expect(try await Self.state(h, tenant) == before)
            #expect(try await h.count("SELECT count(*)::int FROM processed_webhooks") == webhooks)
            #expect(try await h.status(of: tenant) == "trialing")
        }
    }

    @Test func cancelTellsStripeKeepsAccessToThePeriodEndThenCancels() async throws {
        try await Self.with { h, stripe, server in
            let tenant = try await h.trial()
            let reference = try await Self.checkout(h, stripe, tenant: tenant)
            try await Self.deliver(Self.checkoutCompleted(reference, created: Self.t0), h)
            try await Self.deliver(Self.invoice("evt_rec_c1", invoice: "in_rec_c1", created: Self.t0 + 1, start: Self.p0, end: Self.p1, metadata: Self.metadata(reference)), h)
            #expect(try await h.status(of: tenant) == "active")
            let token = try await h.token(tenant)

            // Stripe cannot be told: 502, and nothing changes here. Nor does a plan change, which is Stripe's.
            stripe.failUpdates.withLock { $0 = true }
            let before = try await Self.state(h, tenant)
            let change = try await h.send(.post, "/api/payments/change-plan", token: token, json: ["plan": "starter"])
            #expect(try change.status == 409 && change.error().code == "PLAN_MANAGED_BY_STRIPE")
            // Nor a second subscription, which would charge twice a month.
            let again = try await h.send(.post, "/api/payments/checkout", token: token, json: ["plan": "enterprise"])
            #expect(try again.status == 409 && again.error().code == "SUBSCRIPTION_MANAGED_BY_STRIPE")
            let refused = try await h.send(.post, "/api/payments/cancel", token: token)
            #expect(try refused.status == 502 && refused.error().code == "PAYMENT_PROVIDER_UNAVAILABLE")
            #expect(try await Self.state(h, tenant) == before)

            stripe.failUpdates.withLock { $0 = false }
            let canceled = try await h.send(.post, "/api/payments/cancel", token: token)
            #expect(canceled.status == 200)
            let update = try #require(stripe.updates.withLock { $0.last })
            #expect(update.0 == "/v1/subscriptions/sub_rec" && update.1.first { $0.0 == "cancel_at_period_end" }?.1 == "true")
            #expect(server.received.last?.header("Authorization") == "Bearer sk_test_recurring")

            // Active, cancelling at the period's end, still answering.
            let shown = try await h.send(.get, "/api/payments/subscription", token: token).object()
            #expect(shown["status"] as? String == "active" && shown["cancel_at_period_end"] as? Bool == true)
            #expect(try await h.send(.get, "/api/payments/usage", token: token).object()["chat_allowed"] as? Bool == true)
            // Stripe's own update echoing the cancellation changes nothing more.
            let echo = Self.subscription("evt_rec_echo", created: Self.t0 + 10, status: "active", cancelAtPeriodEnd: true, lookupKey: "pro")
            let transitions = try await h.count("SELECT count(*)::int FROM subscription_transitions WHERE tenant_id = \(tenant)")
            #expect(try Self.receipt(await Self.deliver(echo, h)) == "ignored")
            #expect(try await h.count("SELECT count(*)::int FROM subscription_transitions WHERE tenant_id = \(tenant)") == transitions)

            // Past the period's end: no access even before the scheduler runs; then canceled.
            h.clock.advance(seconds: TimeInterval(Self.p1 - Self.t0) + 60)
            let after = try await h.send(.get, "/api/payments/usage", token: token).object()
            #expect(after["chat_allowed"] as? Bool == false)
            #expect(try await h.runScheduler() == 1)
            #expect(try await h.status(of: tenant) == "canceled")
            // Stripe's deletion at the period's end then finds nothing left to do.
            let deleted = Self.subscription("evt_rec_c_del", "customer.subscription.deleted", created: Self.p1, status: "canceled")
            #expect(try Self.receipt(await Self.deliver(deleted, h)) == "ignored")
            #expect(try await h.status(of: tenant) == "canceled")
        }
    }
}
