import Foundation
import HTTPTypes
import PostgresNIO
import ServiceCore
import Synchronization
import Testing

@testable import BillingApp

/// Stripe's routes on billing's router against a real PostgreSQL, with a local server answering as
/// Stripe's API does: checkout → signed `checkout.session.completed` → the PaymentIntent re-read
/// from Stripe → an active subscription; the customer portal; replayed and forged events.
@Suite("Stripe routes")
struct StripeRoutesTests {
    static let webhookSecret = "whsec_test_routes"

    /// A fake Stripe: a Checkout Session for the first POST, then the PaymentIntent of the
    /// reference billing sent as `client_reference_id`, and a portal session.
    final class FakeStripe: Sendable {
        let reference = Mutex<String?>(nil)

        func answer(_ request: ProviderTestServer.Received) -> ProviderTestServer.Reply {
            switch (request.method, request.path) {
            case ("POST", "/v1/checkout/sessions"):
                reference.withLock { $0 = request.formValue("client_reference_id") }
                return .json(200, #"{"id": "cs_test_routes", "object": "checkout.session", "mode": "payment", "url": "https://checkout.stripe.com/c/pay/cs_test_routes"}"#)
            case ("GET", "/v1/payment_intents/pi_routes"):
                let reference = reference.withLock { $0 } ?? ""
                return .json(200, """
                    {"id": "pi_routes", "object": "payment_intent", "amount": 49990, "amount_received": 49990, "currency": "clp",
                     "status": "succeeded", "created": 1795986000, "livemode": false, "metadata": {"reference": "\(reference)"}, "latest_charge": null}
                    """)
            case ("POST", "/v1/billing_portal/sessions"):
                return .json(200, #"{"id": "bps_routes", "object": "billing_portal.session", "customer": "cus_routes", "url": "https://billing.stripe.com/p/session/test_routes"}"#)
            default:
                return .json(404, #"{"error": {"type": "invalid_request_error", "message": "Unrecognized request URL"}}"#)
            }
        }
    }

    static func completed(reference: String, eventID: String = "evt_routes_1") -> String {
        """
        {"id": "\(eventID)", "object": "event", "api_version": "2025-03-31.basil", "type": "checkout.session.completed", "created": 1795986000,
         "livemode": false, "data": {"object": {"id": "cs_test_routes", "object": "checkout.session", "client_reference_id": "\(reference)",
         "mode": "payment", "payment_status": "paid", "customer": "cus_routes", "payment_intent": "pi_routes", "amount_total": 49990, "currency": "clp"}}}
        """
    }

    func signed(_ payload: String, at harness: BillingRouterHarness, secret: String = webhookSecret) -> HTTPFields {
        let header = StripeSignature.header(payload: Data(payload.utf8), secret: secret, timestamp: Int64(harness.clock.now().timeIntervalSince1970))
        return [HTTPField.Name("Stripe-Signature")!: header]
    }

    @Test func checkoutThenASignedCompletionActivatesThePlanOnceAndOpensThePortal() async throws {
        let stripe = FakeStripe()
        try await ProviderTestServer.with({ stripe.answer($0) }) { server, _ in
            let overrides = [
                "PAYMENT_PROVIDER": "stripe", "STRIPE_SECRET_KEY": "sk_test_routes", "STRIPE_API_URL": server.url,
                "STRIPE_WEBHOOK_SECRET": Self.webhookSecret,
            ]
            try await BillingRouterHarness.with(overrides) { harness in
                let tenant = try await harness.trial()
                let token = try await harness.token(tenant)
                // Before any checkout there is no Stripe customer to open a portal for.
                let early = try await harness.send(.post, "/api/payments/portal", token: token)
                #expect(try early.status == 409 && early.error().code == "NO_STRIPE_CUSTOMER")

                let checkout = try await harness.send(.post, "/api/payments/checkout", token: token, json: ["plan": "pro"])
                #expect(checkout.status == 201, "\(String(decoding: checkout.body, as: UTF8.self))")
                let session = try checkout.object()
                #expect(session["session_id"] as? String == "cs_test_routes" && session["amount"] as? Int == 49_990)
                let reference = try #require(stripe.reference.withLock { $0 })
                #expect(PaymentReference(reference)?.tenantID == tenant)
                #expect(try await harness.status(of: tenant) == "trialing")

                // A forged and an unsigned event change nothing.
                let payload = Self.completed(reference: reference)
                let forged = try await harness.send(.post, "/api/payments/webhook/stripe", raw: payload, headers: signed(payload, at: harness, secret: "whsec_other"))
                #expect(try forged.status == 400 && forged.error().code == "INVALID_WEBHOOK_SIGNATURE")
                let unsigned = try await harness.send(.post, "/api/payments/webhook/stripe", raw: payload)
                #expect(unsigned.status == 400)
                let garbage = "{\"id\": 1}"
                let malformed = try await harness.send(.post, "/api/payments/webhook/stripe", raw: garbage, headers: signed(garbage, at: harness))
                #expect(try malformed.status == 400 && malformed.error().code == "INVALID_NOTIFICATION")
                #expect(try await harness.status(of: tenant) == "trialing")
                #expect(try await harness.count("SELECT count(*) FROM processed_webhooks WHERE provider = 'stripe-event'") == 0)

                // The real one: the PaymentIntent is re-read from Stripe and the plan starts.
                let applied = try await harness.send(.post, "/api/payments/webhook/stripe", raw: payload, headers: signed(payload, at: harness))
                #expect(try applied.status == 200 && applied.object()["status"] as? String == "applied")
                #expect(try await harness.status(of: tenant) == "active")
                #expect(try await harness.value("SELECT plan FROM subscriptions WHERE tenant_id = \(tenant)", as: String.self) == "pro")
                #expect(try await harness.value("SELECT status FROM payments WHERE tenant_id = \(tenant)", as: String.self) == "approved")

                // Stripe delivers it again: applied once.
                let replay = try await harness.send(.post, "/api/payments/webhook/stripe", raw: payload, headers: signed(payload, at: harness))
                #expect(try replay.status == 200 && replay.object()["status"] as? String == "duplicate")
                #expect(try await harness.count("SELECT count(*) FROM subscription_transitions WHERE tenant_id = \(tenant) AND event = 'payment_approved'") == 1)

                // The checkout recorded the customer, so the portal opens.
                let portal = try await harness.send(.post, "/api/payments/portal", token: token)
                #expect(try portal.status == 201 && portal.object()["url"] as? String == "https://billing.stripe.com/p/session/test_routes")
                let sent = try #require(server.received.last)
                #expect(sent.path == "/v1/billing_portal/sessions" && sent.formValue("customer") == "cus_routes")
                #expect(sent.header("Authorization") == "Bearer sk_test_routes")

                // Members cannot open checkouts or the portal.
                let member = try await harness.token(tenant, .user)
                #expect(try await harness.send(.post, "/api/payments/checkout", token: member, json: ["plan": "pro"]).status == 403)
            }
        }
    }

    @Test func withoutAWebhookSecretStripeEventsAreRefused() async throws {
        try await BillingRouterHarness.with { harness in
            let payload = Self.completed(reference: "x")
            let answer = try await harness.send(.post, "/api/payments/webhook/stripe", raw: payload, headers: signed(payload, at: harness))
            #expect(answer.status == 503)
            #expect(try await harness.send(.post, "/api/payments/portal", token: try await harness.token(UUID())).status == 503)
        }
    }
}
