import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import ServiceCore
import TestSupport
import Testing

@testable import BillingApp

/// `StripeClient` against a local server answering as Stripe's API documents: form-encoded
/// bodies with bracket notation, `Authorization: Bearer sk_…`, `Idempotency-Key` on creations,
/// integer amounts in the smallest unit, errors as `{"error": {type, code, message}}`.
@Suite("Stripe client")
struct StripeClientTests {
    static let logger = Logger(label: "stripe-test")
    static let reference = MercadoPagoClientTests.reference

    static func client(_ url: String, _ http: HTTPClient, timeout: TimeAmount = .seconds(5)) throws -> StripeClient {
        try #require(StripeClient(config: StripeConfig(secretKey: "sk_test_51Abc", publishableKey: "pk_test_51Abc", apiURL: url, timeout: timeout), http: http))
    }

    static func intentJSON(status: String = "succeeded", charge: String = #""ch_3Q""#, extra: String = "") -> String {
        """
        {"id": "pi_3QxYz", "object": "payment_intent", "amount": 49990, "amount_received": 49990, "currency": "clp",
         "status": "\(status)", "created": 1795986000, "livemode": false,
         "metadata": {"reference": "\(reference.description)", "tenant_id": "\(reference.tenantID.uuidString.lowercased())", "plan": "pro"},
         "latest_charge": \(charge)\(extra)}
        """
    }

    @Test func checkoutSessionIsAMonthlySubscriptionFormEncodedWithBrackets() async throws {
        let reply = #"{"id": "cs_test_a1B2", "object": "checkout.session", "mode": "payment", "url": "https://checkout.stripe.com/c/pay/cs_test_a1B2"}"#
        try await ProviderTestServer.with({ _ in .json(200, reply) }) { server, http in
            let checkout = try await Self.client(server.url, http).createCheckout(
                MercadoPagoClientTests.order(), returnURL: "https://app.example.com/billing", logger: Self.logger
            )
            #expect(checkout == HostedCheckout(id: "cs_test_a1B2", url: "https://checkout.stripe.com/c/pay/cs_test_a1B2", sandboxURL: nil))
            let sent = try #require(server.received.first)
            #expect(sent.method == "POST" && sent.path == "/v1/checkout/sessions")
            #expect(sent.header("Authorization") == "Bearer sk_test_51Abc")
            #expect(sent.header("Idempotency-Key") == "idem-123")
            #expect(sent.header("Content-Type") == "application/x-www-form-urlencoded")
            #expect(sent.body.contains("line_items%5B0%5D%5Bprice_data%5D%5Bcurrency%5D=clp"))
            #expect(sent.formValue("mode") == "subscription")
            #expect(sent.formValue("line_items[0][price_data][recurring][interval]") == "month")
            #expect(sent.formValue("client_reference_id") == Self.reference.description)
            #expect(sent.formValue("customer_email") == "owner@example.com")
            #expect(sent.formValue("success_url") == "https://app.example.com/billing")
            #expect(sent.formValue("cancel_url") == "https://app.example.com/billing")
            // CLP is zero-decimal in Stripe too: 49,990 pesos is unit_amount 49990.
            #expect(sent.formValue("line_items[0][price_data][unit_amount]") == "49990")
            #expect(sent.formValue("line_items[0][price_data][product_data][name]") == "Pro plan")
            #expect(sent.formValue("line_items[0][quantity]") == "1")
            #expect(sent.formValue("metadata[tenant_id]") == Self.reference.tenantID.uuidString.lowercased())
            #expect(sent.formValue("subscription_data[metadata][reference]") == Self.reference.description)
            #expect(sent.formValue("payment_intent_data[metadata][reference]") == nil)
        }
    }

    @Test func subscriptionCheckoutWithAPriceOrAnInlineMonthlyPrice() async throws {
        let reply = #"{"id": "cs_test_sub", "object": "checkout.session", "mode": "subscription", "url": "https://checkout.stripe.com/c/pay/cs_test_sub"}"#
        try await ProviderTestServer.with({ _ in .json(200, reply) }) { server, http in
            let client = try Self.client(server.url, http)
            _ = try await client.createSubscriptionCheckout(
                MercadoPagoClientTests.order(), priceID: "price_1Pro", successURL: "https://app/ok", cancelURL: "https://app/no", customerID: "cus_9s6X",
                logger: Self.logger
            )
            _ = try await client.createSubscriptionCheckout(
                MercadoPagoClientTests.order(), priceID: nil, successURL: "https://app/ok", cancelURL: "https://app/no", logger: Self.logger
            )
            let (withPrice, inline) = (server.received[0], server.received[1])
            #expect(withPrice.formValue("mode") == "subscription")
            #expect(withPrice.formValue("line_items[0][price]") == "price_1Pro")
            #expect(withPrice.formValue("customer") == "cus_9s6X")
            #expect(withPrice.formValue("customer_email") == nil)
            #expect(withPrice.formValue("subscription_data[metadata][plan]") == "pro")
            #expect(withPrice.formValue("subscription_data[metadata][tenant_id]") == Self.reference.tenantID.uuidString.lowercased())
            #expect(inline.formValue("line_items[0][price_data][recurring][interval]") == "month")
            #expect(inline.formValue("line_items[0][price_data][unit_amount]") == "49990")
            #expect(inline.formValue("client_reference_id") == Self.reference.description)
        }
    }

    @Test func customerPortalSession() async throws {
        let reply = #"{"id": "bps_1MqK", "object": "billing_portal.session", "customer": "cus_9s6X", "url": "https://billing.stripe.com/p/session/test_YWNj"}"#
        try await ProviderTestServer.with({ _ in .json(200, reply) }) { server, http in
            let portal = try await Self.client(server.url, http).createPortalSession(customerID: "cus_9s6X", returnURL: "https://app/billing", logger: Self.logger)
            #expect(portal == StripeClient.PortalSession(id: "bps_1MqK", url: "https://billing.stripe.com/p/session/test_YWNj"))
            let sent = try #require(server.received.first)
            #expect(sent.path == "/v1/billing_portal/sessions")
            #expect(sent.form().map(\.0) == ["customer", "return_url"])
            #expect(sent.formValue("return_url") == "https://app/billing")
        }
    }

    @Test func chargeConfirmsAPaymentIntentAndADeclineIsARejectedPayment() async throws {
        let declined = """
            {"error": {"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
              "message": "Your card has insufficient funds.",
              "payment_intent": \(Self.intentJSON(status: "requires_payment_method", charge: "null",
                extra: #", "last_payment_error": {"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds"}"#))}}
            """
        try await ProviderTestServer.with({ request in
            request.formValue("payment_method") == "pm_card_chargeDeclinedInsufficientFunds" ? .json(402, declined) : .json(200, Self.intentJSON())
        }) { server, http in
            let client = try Self.client(server.url, http)
            let ok = try await client.charge(MercadoPagoClientTests.order(), card: CardPayment(token: "pm_card_visa", paymentMethodID: "card", installments: 1, issuerID: nil), logger: Self.logger)
            #expect(ok.status == .approved)
            #expect(ok.amount == Money(minorUnits: 49_990, currency: "CLP"))
            #expect(ok.reference == Self.reference.description)
            let sent = try #require(server.received.first)
            #expect(sent.path == "/v1/payment_intents")
            #expect(sent.header("Idempotency-Key") == "idem-123")
            #expect(sent.formValue("amount") == "49990" && sent.formValue("currency") == "clp")
            #expect(sent.formValue("confirm") == "true")
            #expect(sent.formValue("payment_method") == "pm_card_visa")
            #expect(sent.formValue("automatic_payment_methods[allow_redirects]") == "never")

            let no = try await client.charge(
                MercadoPagoClientTests.order(), card: CardPayment(token: "pm_card_chargeDeclinedInsufficientFunds", paymentMethodID: "card", installments: 1, issuerID: nil),
                logger: Self.logger
            )
            #expect(no.status == .rejected)
            #expect(no.statusDetail == "insufficient_funds")
        }
    }

    @Test func paymentIntentIsReadWithItsChargeExpanded() async throws {
        let charge = """
            {"id": "ch_3Q", "object": "charge", "created": 1795986005, "amount_refunded": 49990, "refunded": true,
             "payment_method_details": {"type": "card", "card": {"brand": "visa"}}}
            """
        try await ProviderTestServer.with({ _ in .json(200, Self.intentJSON(charge: charge)) }) { server, http in
            let payment = try await Self.client(server.url, http).payment(id: "pi_3QxYz", logger: Self.logger)
            #expect(payment.status == .refunded)
            #expect(payment.refundedAmount == Money(minorUnits: 49_990, currency: "CLP"))
            #expect(payment.paymentMethodID == "visa")
            #expect(payment.createdAt == Date(timeIntervalSince1970: 1_795_986_000))
            let sent = try #require(server.received.first)
            #expect(sent.method == "GET" && sent.path == "/v1/payment_intents/pi_3QxYz")
            #expect(sent.query?.removingPercentEncoding == "expand[]=latest_charge")
            #expect(sent.header("Authorization") == "Bearer sk_test_51Abc")
        }
        for (wire, failed, expected) in [("succeeded", false, ProviderPayment.Status.approved), ("processing", false, .pending), ("requires_action", false, .pending),
            ("requires_payment_method", false, .pending), ("requires_payment_method", true, .rejected), ("canceled", false, .cancelled)]
        {
            #expect(StripeClient.status(wire, failed: failed) == expected, "\(wire)")
        }
    }

    @Test func refundsGoToTheRefundsEndpoint() async throws {
        let reply = #"{"id": "re_3Q", "object": "refund", "amount": 10000, "currency": "clp", "payment_intent": "pi_3QxYz", "status": "succeeded"}"#
        try await ProviderTestServer.with({ _ in .json(200, reply) }) { server, http in
            let refund = try await Self.client(server.url, http).refund(
                paymentID: "pi_3QxYz", amount: Money(minorUnits: 10_000, currency: "CLP"), idempotencyKey: "refund-1", logger: Self.logger
            )
            #expect(refund == ProviderRefund(id: "re_3Q", amount: Money(minorUnits: 10_000, currency: "CLP"), status: "succeeded"))
            let sent = try #require(server.received.first)
            #expect(sent.method == "POST" && sent.path == "/v1/refunds")
            #expect(sent.header("Idempotency-Key") == "refund-1")
            #expect(sent.form().map(\.0) == ["payment_intent", "amount"])
            #expect(sent.formValue("amount") == "10000")
        }
    }

    @Test func errorsTimeoutsAndWhatStripeDoesNotOffer() async throws {
        let invalid = #"{"error": {"type": "invalid_request_error", "code": "resource_missing", "param": "id", "message": "No such payment_intent: 'pi_nope'"}}"#
        try await ProviderTestServer.with({ request in request.path.hasSuffix("pi_nope") ? .json(404, invalid) : .json(500, #"{"error": {"type": "api_error", "message": "boom"}}"#) }) { server, http in
            let client = try Self.client(server.url, http)
            await #expect(throws: PaymentProviderError.rejectedByProvider(status: 404, message: "No such payment_intent: 'pi_nope' (resource_missing)")) {
                try await client.payment(id: "pi_nope", logger: Self.logger)
            }
            await #expect(throws: PaymentProviderError.unavailable("Stripe answered 500")) {
                try await client.refund(paymentID: "pi_3QxYz", amount: nil, idempotencyKey: "k", logger: Self.logger)
            }
            await #expect(throws: PaymentProviderError.self) { try await client.payment(id: "../v1/customers", logger: Self.logger) }
            #expect(server.received.count == 2)
            await #expect(throws: PaymentProviderError.unsupported("Stripe does not ask the payer for a card issuer")) {
                try await client.cardIssuers(paymentMethodID: "visa", logger: Self.logger)
            }
            do {
                _ = try await client.paymentMethods(logger: Self.logger)
                Issue.record("payment methods should be unsupported")
            } catch PaymentProviderError.unsupported {}
        }
        let silent = try SilentListener()
        let http = HTTPClient.makeInternal()
        await #expect(throws: PaymentProviderError.timedOut) {
            try await Self.client(silent.url, http, timeout: .seconds(1)).createPortalSession(customerID: "cus_1", returnURL: "https://app", logger: Self.logger)
        }
        try await http.shutdown()
    }

    @Test func configurationIsReadFromTheEnvironment() throws {
        #expect(try StripeConfig(settings: .variables([:])) == nil)
        let onlyWebhook = try #require(try StripeConfig(settings: .variables(["STRIPE_WEBHOOK_SECRET": "whsec_abc"])))
        #expect(onlyWebhook.webhookTolerance == 300)
        #expect(StripeClient(config: onlyWebhook, http: HTTPClient.shared) == nil)
        let full = try #require(try StripeConfig(settings: .variables(["STRIPE_SECRET_KEY": "sk_test_1", "STRIPE_API_URL": "http://127.0.0.1:1"])))
        #expect(full.apiURL == "http://127.0.0.1:1")
        #expect(try #require(StripeClient(config: full, http: HTTPClient.shared)).isTestMode)
        #expect(throws: (any Error).self) { try StripeConfig(settings: .variables(["STRIPE_SECRET_KEY": "pk_live_1"])) }
        #expect(throws: (any Error).self) { try StripeConfig(settings: .variables(["STRIPE_WEBHOOK_SECRET": "secret"])) }
    }
}
