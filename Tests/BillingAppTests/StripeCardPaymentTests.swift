import Foundation
import HTTPTypes
import PostgresNIO
import ServiceCore
import Testing

@testable import BillingApp

/// A direct card payment under `PAYMENT_PROVIDER=stripe` whose card asks for 3-D Secure: Stripe
/// answers the confirmed PaymentIntent `requires_action`, and billing hands the browser what
/// Stripe.js needs (`next_action` with the client secret) while nothing is recorded as paid.
@Suite("Stripe card payments")
struct StripeCardPaymentTests {
    static let requiresAction = """
        {"id": "pi_3ds", "object": "payment_intent", "amount": 49990, "amount_received": 0, "currency": "clp",
         "status": "requires_action", "created": 1795986000, "livemode": false, "client_secret": "pi_3ds_secret_Xy12",
         "next_action": {"type": "use_stripe_sdk", "use_stripe_sdk": {"type": "three_d_secure_redirect", "stripe_js": "https://hooks.stripe.com/3d_secure_2/hosted"}},
         "metadata": {}, "latest_charge": null}
        """

    @Test func aCardThatNeedsThreeDSecureAnswersTheNextActionAndStaysPending() async throws {
        try await ProviderTestServer.with({ request in
            request.method == "POST" && request.path == "/v1/payment_intents"
                ? .json(200, Self.requiresAction)
                : .json(404, #"{"error": {"type": "invalid_request_error", "message": "Unrecognized request URL"}}"#)
        }) { server, _ in
            let overrides = ["PAYMENT_PROVIDER": "stripe", "STRIPE_SECRET_KEY": "sk_test_3ds", "STRIPE_API_URL": server.url]
            try await BillingRouterHarness.with(overrides) { harness in
                let tenant = try await harness.trial()
                let token = try await harness.token(tenant)
                let body = ["token": "pm_card_threeDSecure2Required", "payment_method_id": "card", "plan": "pro", "email": "owner@example.com"]
                let key: HTTPFields = [HTTPField.Name("Idempotency-Key")!: "3ds-1"]
                let paid = try await harness.send(.post, "/api/payments/process-payment", token: token, json: body, headers: key)
                #expect(paid.status == 200, "\(String(decoding: paid.body, as: UTF8.self))")
                let answer = try paid.object()
                #expect(answer["status"] as? String == "pending")
                let next = try #require(answer["next_action"] as? [String: Any])
                #expect(next["type"] as? String == "use_stripe_sdk")
                #expect(next["client_secret"] as? String == "pi_3ds_secret_Xy12")
                #expect(try #require(server.received.first).formValue("payment_method") == "pm_card_threeDSecure2Required")

                // Nothing is paid yet, and a retry replays the same answer without a second charge.
                #expect(try await harness.status(of: tenant) == "trialing")
                #expect(try await harness.value("SELECT status FROM payments WHERE tenant_id = \(tenant)", as: String.self) == "pending")
                let retry = try await harness.send(.post, "/api/payments/process-payment", token: token, json: body, headers: key)
                #expect(retry.status == 200)
                #expect((try retry.object()["next_action"] as? [String: Any])?["client_secret"] as? String == "pi_3ds_secret_Xy12")
                #expect(server.received.count == 1)
            }
        }
    }
}
