import Foundation
import HTTPTypes
import InternalAPI
import Logging
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

@testable import BillingApp

/// The payments API through billing's router against real PostgreSQL, with the sandbox provider.
@Suite("billing payments (router)")
struct BillingPaymentsRouterTests {
    struct Answer: Decodable {
        var paymentId: String
        var status: String
        var statusDetail: String?
        var statusMessage: String
    }

    @Test func catalogueConfigAndOnePlan() async throws {
        try await BillingRouterHarness.with { h in
            let plans = try await h.send(.get, "/api/payments/plans").object()["plans"] as? [[String: Any]]
            #expect(plans?.map { $0["price"] as? Int } == [19_990, 49_990, 149_990])
            let pro = try await h.send(.get, "/api/payments/plans/pro")
            #expect(pro.status == 200)
            #expect(try pro.object()["monthly_message_quota"] as? Int == 50_000)
            #expect(try await h.send(.get, "/api/payments/plans/trial").status == 404)
            let unknown = try await h.send(.get, "/api/payments/plans/gold")
            #expect(unknown.status == 404)
            #expect(try unknown.error().code == "PLAN_NOT_FOUND")
            let config = try await h.send(.get, "/api/payments/config").object()
            #expect(config["enabled"] as? Bool == true)
            #expect(config["provider"] as? String == "sandbox")
            #expect(config["is_sandbox"] as? Bool == true)
            #expect(config["locale"] as? String == "es-CL")
            #expect(config["currency"] as? String == "CLP")
            #expect(try await h.value("SELECT price FROM plans WHERE id = 'enterprise'", as: Int.self) == 149_990)
        }
    }

    @Test func approvedCardActivatesOnceAndItsWebhookChangesNothingMore() async throws {
        try await BillingRouterHarness.with { h in
            let tenant = try await h.trial()
            let answer = try await h.pay(tenant)
            #expect(answer.status == 200)
            let body = try answer.json(Answer.self)
            #expect(body.status == "approved")
            #expect(try await h.status(of: tenant) == "active")
            #expect(try await h.value("SELECT plan FROM subscriptions WHERE tenant_id = \(tenant)", as: String.self) == "pro")
            #expect(
                try await h.count(
                    "SELECT count(*)::int FROM subscription_transitions WHERE tenant_id = \(tenant) AND from_status = 'trialing' AND to_status = 'active' AND cause = 'payment' AND event = 'payment_approved'"
                ) == 1
            )
            // billing.payment_completed waits in the outbox for tenancy.
            #expect(try await h.count("SELECT count(*)::int FROM outbox_events e JOIN outbox_deliveries d ON d.event_id = e.id WHERE e.type = 'billing.payment_completed' AND d.subscriber = 'tenancy'") == 1)

            let providerID = try #require(try await h.value("SELECT provider_payment_id FROM payments WHERE tenant_id = \(tenant)", as: String.self))
            let first = try await h.webhook(providerID)
            #expect(first.status == 200)
            #expect(try first.object()["status"] as? String == "ignored")
            let replay = try await h.webhook(providerID)
            #expect(try replay.object()["status"] as? String == "duplicate")
            #expect(try await h.count("SELECT count(*)::int FROM subscription_transitions WHERE tenant_id = \(tenant)") == 1)
            #expect(try await h.count("SELECT count(*)::int FROM outbox_events WHERE type = 'billing.payment_completed'") == 1)

            let shown = try await h.send(.get, "/api/payments/payment/\(body.paymentId)", token: try await h.token(tenant, .user))
            #expect(shown.status == 200)
            #expect(try shown.object()["amount"] as? Int == 49_990)
            let stranger = try await h.send(.get, "/api/payments/payment/\(body.paymentId)", token: try await h.token(UUID()))
            #expect(stranger.status == 404)
            let invoices = try await h.send(.get, "/api/payments/invoices?limit=5", token: try await h.token(tenant, .user)).object()["invoices"] as? [[String: Any]]
            #expect(invoices?.count == 1)
            #expect(invoices?.first?["status"] as? String == "approved")
            #expect(try await h.send(.get, "/api/payments/invoices?limit=0", token: try await h.token(tenant)).status == 422)
        }
    }

    @Test func aRetriedKeyNeverChargesTwice() async throws {
        try await BillingRouterHarness.with { h in
            let tenant = try await h.trial()
            let first = try await h.pay(tenant, key: "key-1")
            let again = try await h.pay(tenant, key: "key-1")
            #expect(first.status == 200)
            #expect(again.status == 200)
            #expect(try first.json(Answer.self).paymentId == again.json(Answer.self).paymentId)
            #expect(try await h.count("SELECT count(*)::int FROM sandbox_payments") == 1)
            #expect(try await h.count("SELECT count(*)::int FROM payments") == 1)

            let before = try await h.snapshot()
            let reused = try await h.pay(tenant, plan: "enterprise", key: "key-1")
            #expect(reused.status == 422)
            #expect(try reused.error().code == "IDEMPOTENCY_KEY_REUSED")
            #expect(try await h.snapshot() == before)
        }
    }

    @Test func aPaymentInFlightHoldsOffRetriesAndOtherPayments() async throws {
        try await BillingRouterHarness.with { h in
            let tenant = try await h.trial()
            // The first request's provider call is still running (its lease ahead of now).
            try await h.execute(
                """
                INSERT INTO payments (id, tenant_id, plan, provider, kind, status, amount, currency, idempotency_key, request_fingerprint, processing_until, created_at)
                VALUES (\(UUID()), \(tenant), 'pro', 'sandbox', 'card', 'processing', 49990, 'CLP', 'busy-key',
                        \(CardPayments.fingerprint(CardPaymentOrder(plan: PlanCatalog.defaults.plan("pro")!, card: CardPayment(token: SandboxPaymentProvider.Token.approved, paymentMethodID: "visa", installments: 1), email: "payer@example.com", idempotencyKey: "busy-key"))),
                        \(h.clock.now().addingTimeInterval(60)), \(h.clock.now()))
                """
            )
            let before = try await h.snapshot()
            let retry = try await h.pay(tenant, key: "busy-key")
            #expect(retry.status == 409)
            #expect(try retry.error().code == "PAYMENT_IN_FLIGHT")
            let other = try await h.pay(tenant, key: "another-key")
            #expect(other.status == 409)
            #expect(try other.error().code == "PAYMENT_IN_PROGRESS")
            #expect(try await h.snapshot() == before)
            #expect(try await h.status(of: tenant) == "trialing")

            // Once its lease has run out, the same key asks the provider again under the same provider key.
            h.clock.advance(seconds: 120)
            let taken = try await h.pay(tenant, key: "busy-key")
            #expect(taken.status == 200)
            #expect(try await h.count("SELECT count(*)::int FROM sandbox_payments") == 1)
            #expect(try await h.status(of: tenant) == "active")
        }
    }

    @Test func concurrentRequestsWithOneKeyChargeOnce() async throws {
        try await BillingRouterHarness.with { h in
            let tenant = try await h.trial()
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<4 { group.addTask { try await h.pay(tenant, key: "same").status } }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(statuses.allSatisfy { $0 == 200 || $0 == 409 })
            #expect(statuses.contains(200))
            #expect(try await h.count("SELECT count(*)::int FROM sandbox_payments") == 1)
            #expect(try await h.count("SELECT count(*)::int FROM subscription_transitions WHERE event = 'payment_approved'") == 1)
        }
    }

    @Test func badPaymentRequestsChangeNothing() async throws {
        try await BillingRouterHarness.with { h in
            let tenant = try await h.trial()
            let owner = try await h.token(tenant)
            let before = try await h.snapshot()
            let cases: [(String, Int, String?)] = [
                (#"{"token":"tok_sandbox_approved","payment_method_id":"visa","plan":"gold"}"#, 422, "plan"),
                (#"{"token":"tok_sandbox_approved","payment_method_id":"visa","plan":"trial"}"#, 422, "plan"),
                (#"{"payment_method_id":"visa","plan":"pro"}"#, 422, "token"),
                (#"{"token":"tok_sandbox_approved","payment_method_id":"visa","plan":"pro","installments":0}"#, 422, "installments"),
                (#"{"token":"tok_sandbox_approved","payment_method_id":"visa","plan":"pro","installments":1.5}"#, 400, nil),
                (#"{"token":"tok_sandbox_approved","payment_method_id":"visa","plan":"pro","issuer_id":0}"#, 422, "issuer_id"),
                (#"{"token":"tok_sandbox_approved","payment_method_id":"visa","plan":"pro","issuer_id":2147483648}"#, 422, "issuer_id"),
                // Beyond any integer the service reads: not a number it can hold, 400.
                (#"{"token":"tok_sandbox_approved","payment_method_id":"visa","plan":"pro","issuer_id":-85264025165521521903772999813139791872}"#, 400, nil),
                (#"{"token":"tok_sandbox_approved","payment_method_id":"visa","plan":"pro","email":"nope"}"#, 422, "email"),
                (#"{"token":"#, 400, nil),
            ]
            for (raw, status, field) in cases {
                let answer = try await h.send(.post, "/api/payments/process-payment", token: owner, raw: raw)
                #expect(answer.status == status, "\(raw)")
                if let field { #expect(try answer.error().fields?[field] != nil, "\(raw)") }
            }
            let badKey = try await h.send(
                .post, "/api/payments/process-payment", token: owner, raw: #"{"token":"tok_sandbox_approved","payment_method_id":"visa","plan":"pro"}"#,
                headers: [HTTPField.Name("Idempotency-Key")!: String(repeating: "k", count: 300)]
            )
            #expect(badKey.status == 400)
            #expect(try await h.snapshot() == before)
            #expect(try await h.status(of: tenant) == "trialing")
        }
        try await BillingRouterHarness.with { h in
            let tenant = try await h.trial()
            let before = try await h.snapshot()
            let user = try await h.send(
                .post, "/api/payments/process-payment", token: try await h.token(tenant, .user),
                json: ["token": "tok_sandbox_approved", "payment_method_id": "visa", "plan": "pro"]
            )
            #expect(user.status == 403)
            #expect(try await h.send(.post, "/api/payments/process-payment", json: ["plan": "pro"]).status == 401)
            let unknownToken = try await h.pay(tenant, token: "tok_nonsense")
            #expect(unknownToken.status == 422)
            #expect(try unknownToken.error().fields?["token"] != nil)
            #expect(try await h.status(of: tenant) == "trialing")
            #expect(try await h.count("SELECT count(*)::int FROM payments WHERE status = 'approved'") == 0)
            #expect(try await h.count("SELECT count(*)::int FROM subscription_transitions") == 0)
            _ = before
        }
    }

    @Test func rejectedThenPendingThenApprovedByItsOwnWebhook() async throws {
        try await BillingRouterHarness.with { h in
            let tenant = try await h.trial()
            let rejected = try await h.pay(tenant, token: SandboxPaymentProvider.Token.rejected)
            #expect(try rejected.json(Answer.self).status == "rejected")
            #expect(try await h.status(of: tenant) == "incomplete")

            let pending = try await h.pay(tenant, token: SandboxPaymentProvider.Token.pending)
            #expect(try pending.json(Answer.self).status == "pending")
            #expect(try await h.status(of: tenant) == "incomplete")
            let providerID = try #require(
                try await h.value("SELECT provider_payment_id FROM payments WHERE status = 'pending' AND tenant_id = \(tenant)", as: String.self)
            )
            // Before the bank "answers", the notification finds it still pending: nothing new.
            #expect(try await h.webhook(providerID).status == 200)
            #expect(try await h.status(of: tenant) == "incomplete")
            h.clock.advance(seconds: 10)
            let approved = try await h.webhook(providerID)
            #expect(try approved.object()["status"] as? String == "applied")
            #expect(try await h.status(of: tenant) == "active")
            let events = try await TestPostgres.withClient(h.database) { client in
                try await client.query("SELECT event FROM subscription_transitions WHERE tenant_id = \(tenant) ORDER BY occurred_at, recorded_at").collect().map { try $0.decode(String.self) }
            }
            #expect(events == ["payment_not_approved", "payment_not_approved", "payment_approved"])
        }
    }

    @Test func badWebhooksAreRefusedAndChangeNothing() async throws {
        try await BillingRouterHarness.with { h in
            let tenant = try await h.trial()
            _ = try await h.pay(tenant, token: SandboxPaymentProvider.Token.pending)
            let providerID = try #require(try await h.value("SELECT provider_payment_id FROM payments", as: String.self))
            h.clock.advance(seconds: 10)
            let before = try await h.snapshot()
            let wrongSecret = try await h.webhook(providerID, secret: "not-the-secret")
            #expect(wrongSecret.status == 400)
            #expect(try wrongSecret.error().code == "INVALID_SIGNATURE")
            #expect(try await h.webhook(providerID, time: h.clock.now().addingTimeInterval(-3_600)).status == 400)
            #expect(try await h.webhook(providerID, signature: "").status == 400)
            #expect(try await h.webhook(providerID, signature: "ts=abc,v1=zz").status == 400)
            let unsigned = try await h.send(.post, "/api/payments/webhook?data.id=\(providerID)&type=payment", raw: "{}")
            #expect(unsigned.status == 400)
            // Signed for another id than the one in the body.
            let signer = MercadoPagoWebhookSignature(secret: BillingRouterHarness.webhookSecret, tolerance: 300)
            let mismatched = try await h.send(
                .post, "/api/payments/webhook?data.id=\(providerID)&type=payment", raw: #"{"type":"payment","data":{"id":"999"}}"#,
                headers: [
                    HTTPField.Name("x-signature")!: signer.header(dataID: providerID, requestID: "r", time: h.clock.now()),
                    HTTPField.Name("x-request-id")!: "r",
                ]
            )
            #expect(mismatched.status == 400)
            let malformed = try await h.send(
                .post, "/api/payments/webhook?data.id=\(providerID)&type=payment", raw: "{not json",
                headers: [
                    HTTPField.Name("x-signature")!: signer.header(dataID: providerID, requestID: "r", time: h.clock.now()),
                    HTTPField.Name("x-request-id")!: "r",
                ]
            )
            #expect(malformed.status == 400)
            #expect(try await h.snapshot() == before)
            #expect(try await h.status(of: tenant) == "incomplete")
            // A well-signed notification of an id the provider does not know: acknowledged, nothing changes.
            #expect(try await h.webhook("123").object()["status"] as? String == "ignored")
        }
    }

    @Test func anOlderNotificationAfterANewerOneNeverMovesBack() async throws {
        try await BillingRouterHarness.with { h in
            let tenant = try await h.trial()
            let paid = try await h.pay(tenant).json(Answer.self)
            let payment = try #require(UUID(uuidString: paid.paymentId))
            let stale = ProviderPayment(
                id: try #require(try await h.value("SELECT provider_payment_id FROM payments", as: String.self)), status: .pending, statusDetail: nil,
                amount: Money(minorUnits: 49_990, currency: "CLP"), refundedAmount: nil, paymentMethodID: "visa",
                reference: PaymentReference(tenantID: tenant, plan: "pro", paymentID: payment).description, createdAt: nil, approvedAt: nil, threeDSInfo: nil
            )
            let before = try await h.snapshot()
            let outcome = try await TestPostgres.withDatabase(h.database) { database in
                try await database.transaction(logger: Logger(label: "test")) { connection in
                    try await ProviderPaymentApplier(ledger: SubscriptionLedger(outbox: BillingRouterHarness.outbox))
                        .apply(stale, cause: .webhook, now: h.clock.now(), on: connection, logger: Logger(label: "test"))
                }
            }
            #expect(outcome == .unchanged)
            #expect(try await h.snapshot() == before)
            #expect(try await h.value("SELECT status FROM payments", as: String.self) == "approved")
            #expect(try await h.status(of: tenant) == "active")
        }
    }

    @Test func providerTimeoutOrFailureIsNeverPaidAndTheWebhookSettlesIt() async throws {
        try await BillingRouterHarness.with { h in
            let tenant = try await h.trial()
            let failed = try await h.pay(tenant, token: SandboxPaymentProvider.Token.unavailable)
            #expect(failed.status == 502)
            #expect(try failed.error().detail.isEmpty == false)
            let timedOut = try await h.pay(tenant, token: SandboxPaymentProvider.Token.timeout, key: "slow")
            #expect(timedOut.status == 504)
            #expect(try await h.count("SELECT count(*)::int FROM payments WHERE status IN ('approved')") == 0)
            #expect(try await h.status(of: tenant) == "trialing")
            // The provider did charge: its notification (with its id) settles the payment.
            let providerID = try #require(try await h.value("SELECT id FROM sandbox_payments", as: String.self))
            #expect(try await h.webhook(providerID).object()["status"] as? String == "applied")
            #expect(try await h.status(of: tenant) == "active")
            // A retry of the timed-out request now answers what happened, and charges nothing more.
            let retry = try await h.pay(tenant, token: SandboxPaymentProvider.Token.timeout, key: "slow")
            #expect(retry.status == 200)
            #expect(try retry.json(Answer.self).status == "approved")
            #expect(try await h.count("SELECT count(*)::int FROM sandbox_payments") == 1)
        }
    }

    @Test func paymentMethodsIssuersAndPreferences() async throws {
        try await BillingRouterHarness.with { h in
            let methods = try await h.send(.get, "/api/payments/payment-methods").object()["payment_methods"] as? [[String: Any]]
            #expect(methods?.first?["payment_type_id"] as? String == "credit_card")
            #expect(try await h.send(.get, "/api/payments/card-issuers/visa").status == 200)
            #expect(try await h.send(.get, "/api/payments/card-issuers/nope").status == 404)
            let tenant = try await h.trial()
            let preference = try await h.send(.post, "/api/payments/create-preference", token: try await h.token(tenant), json: ["plan": "starter"])
            #expect(preference.status == 201)
            let body = try preference.object()
            #expect(body["amount"] as? Int == 19_990)
            #expect((body["init_point"] as? String)?.isEmpty == false)
            #expect(try await h.count("SELECT count(*)::int FROM payments WHERE kind = 'checkout' AND status = 'pending'") == 1)
            let before = try await h.snapshot()
            #expect(try await h.send(.post, "/api/payments/create-preference", token: try await h.token(tenant), json: ["plan": "gold"]).status == 422)
            #expect(try await h.snapshot() == before)
        }
    }
}
