import AsyncHTTPClient
import Foundation
import Logging
import NIOHTTP1

/// Stripe's API (`api.stripe.com`): Checkout Sessions (one payment or a subscription), the
/// Customer Portal, PaymentIntents and refunds. Bodies are form-encoded with bracket notation
/// (`StripeForm`), the secret key goes as `Authorization: Bearer sk_…`, and every creation carries
/// `Idempotency-Key`, so Stripe answers a retry with the first result instead of acting twice.
/// Stripe has no payment-method or card-issuer catalogue of this kind: those are `.unsupported`.
struct StripeClient: PaymentProvider {
    let secretKey: String
    let publishableKey: String?
    let api: ProviderHTTP

    /// nil when the configuration has no secret key (only the webhook is configured).
    init?(config: StripeConfig, http: HTTPClient) {
        guard let secretKey = config.secretKey else { return nil }
        self.secretKey = secretKey
        self.publishableKey = config.publishableKey
        self.api = ProviderHTTP(provider: "Stripe", http: http, baseURL: config.apiURL, timeout: config.timeout)
    }

    var kind: PaymentProviderKind { .stripe }
    var publicKey: String? { publishableKey }
    var isTestMode: Bool { secretKey.hasPrefix("sk_test_") || secretKey.hasPrefix("rk_test_") }

    /// A Customer Portal session: its id (`bps_…`) and where to send the customer.
    struct PortalSession: Sendable, Equatable {
        var id: String
        var url: String
    }

    /// The hosted checkout of a plan is a Stripe Billing subscription (`mode=subscription`, the plan's
    /// price as a monthly `price_data`): Stripe charges every period itself and reports each through
    /// `invoice.paid` / `invoice.payment_failed`, as Stripe Billing's users expect.
    func createCheckout(_ order: PaymentOrder, returnURL: String, logger: Logger) async throws -> HostedCheckout {
        try await createSubscriptionCheckout(order, priceID: nil, successURL: returnURL, cancelURL: returnURL, logger: logger)
    }

    /// `POST /v1/subscriptions/{id}` with `cancel_at_period_end`: Stripe stops renewing (or renews
    /// again) at the period's end and reports it as `customer.subscription.updated`.
    /// Setting a flag is idempotent by itself, so no `Idempotency-Key` (a key would replay an earlier
    /// answer for 24 hours, even after the customer renewed in the portal).
    func setCancelAtPeriodEnd(subscriptionID: String, _ cancel: Bool, logger: Logger) async throws {
        var form = StripeForm()
        form.add("cancel_at_period_end", cancel ? "true" : "false")
        _ = try await post("/v1/subscriptions/\(try Self.objectID(subscriptionID, prefix: "sub_"))", form, idempotencyKey: nil, logger: logger)
    }

    /// The PaymentIntent billing created under `reference`, found by its metadata through Stripe's
    /// search (`GET /v1/payment_intents/search`): a charge whose answer never came back. nil when Stripe has none.
    func findPayment(reference: PaymentReference, idempotencyKey: String, logger: Logger) async throws -> ProviderPayment? {
        let query = "metadata['payment_id']:'\(reference.paymentID.uuidString.lowercased())'"
        var form = StripeForm()
        form.add("query", query)
        form.add("expand[]", "data.latest_charge")
        let answer = try await get("/v1/payment_intents/search?\(form.encoded)", logger: logger)
        let found = try api.decode(StripeWire.SearchResult.self, from: answer, logger: logger)
        return try found.data.first { $0.metadata?["reference"] == reference.description }.map(Self.normalise)
    }

    /// A Checkout Session in `subscription` mode: Stripe then bills the plan every month itself and
    /// reports through webhooks (`invoice.paid`, `customer.subscription.updated`, …). `priceID` is a
    /// price configured in Stripe (`price_…`); without one the plan's price goes inline as a monthly `price_data`.
    func createSubscriptionCheckout(
        _ order: PaymentOrder, priceID: String?, successURL: String, cancelURL: String, customerID: String? = nil, logger: Logger
    ) async throws -> HostedCheckout {
        var form = Self.checkoutForm(order, mode: "subscription", successURL: successURL, cancelURL: cancelURL, customerID: customerID)
        if let priceID {
            form.add("line_items[0][price]", priceID)
        } else {
            form.add("line_items[0][price_data][currency]", order.amount.currency.lowercased())
            form.add("line_items[0][price_data][unit_amount]", order.amount.minorUnits)
            form.add("line_items[0][price_data][product_data][name]", order.title)
            form.add("line_items[0][price_data][recurring][interval]", "month")
        }
        // The subscription's own events (updated, deleted, its invoices) carry tenant and plan too.
        form.add("subscription_data[metadata]", metadata: Self.metadata(order.reference))
        return try await session(form, idempotencyKey: order.idempotencyKey, logger: logger)
    }

    /// A Customer Portal session (`POST /v1/billing_portal/sessions`) where the customer manages
    /// cards, invoices and cancellation, returning to `returnURL`.
    func createPortalSession(customerID: String, returnURL: String, logger: Logger) async throws -> PortalSession {
        var form = StripeForm()
        form.add("customer", customerID)
        form.add("return_url", returnURL)
        let answer = try await post("/v1/billing_portal/sessions", form, idempotencyKey: nil, logger: logger)
        let session = try api.decode(StripeWire.Session.self, from: answer, logger: logger)
        guard let url = session.url else { throw PaymentProviderError.unavailable("Stripe answered a portal session without a url") }
        return PortalSession(id: session.id, url: url)
    }

    /// Confirms a PaymentIntent with a payment method made in the payer's browser (`pm_…`). A
    /// declined card is a `rejected` payment, not an error; 3-D Secure leaves it `pending`.
    func charge(_ order: PaymentOrder, card: CardPayment, logger: Logger) async throws -> ProviderPayment {
        var form = StripeForm()
        form.add("amount", order.amount.minorUnits)
        form.add("currency", order.amount.currency.lowercased())
        form.add("payment_method", card.token)
        form.add("confirm", "true")
        form.add("description", order.title)
        form.add("receipt_email", order.payerEmail)
        form.add("automatic_payment_methods[enabled]", "true")
        form.add("automatic_payment_methods[allow_redirects]", "never")
        form.add("metadata", metadata: Self.metadata(order.reference))
        do {
            let answer = try await post("/v1/payment_intents", form, idempotencyKey: order.idempotencyKey, logger: logger)
            return try Self.normalise(api.decode(StripeWire.PaymentIntent.self, from: answer, logger: logger))
        } catch StripeRefusal.declined(let intent) {
            return try Self.normalise(intent)
        }
    }

    func payment(id: String, logger: Logger) async throws -> ProviderPayment {
        let answer = try await get("/v1/payment_intents/\(try Self.objectID(id, prefix: "pi_"))?expand%5B%5D=latest_charge", logger: logger)
        return try Self.normalise(api.decode(StripeWire.PaymentIntent.self, from: answer, logger: logger))
    }

    func refund(paymentID: String, amount: Money?, idempotencyKey: String, logger: Logger) async throws -> ProviderRefund {
        var form = StripeForm()
        form.add("payment_intent", try Self.objectID(paymentID, prefix: "pi_"))
        form.add("amount", amount?.minorUnits)
        let answer = try await post("/v1/refunds", form, idempotencyKey: idempotencyKey, logger: logger)
        let refund = try api.decode(StripeWire.Refund.self, from: answer, logger: logger)
        return ProviderRefund(id: refund.id, amount: Money(minorUnits: refund.amount, currency: refund.currency.uppercased()), status: refund.status)
    }

    func paymentMethods(logger: Logger) async throws -> [PaymentMethod] {
        throw PaymentProviderError.unsupported("Stripe offers its payment methods in Checkout and Elements; there is no catalogue to list")
    }

    func cardIssuers(paymentMethodID: String, logger: Logger) async throws -> [CardIssuer] {
        throw PaymentProviderError.unsupported("Stripe does not ask the payer for a card issuer")
    }

    // MARK: - Wire

    private static func checkoutForm(_ order: PaymentOrder, mode: String, successURL: String, cancelURL: String, customerID: String? = nil) -> StripeForm {
        var form = StripeForm()
        form.add("mode", mode)
        form.add("client_reference_id", order.reference.description)
        if let customerID { form.add("customer", customerID) } else { form.add("customer_email", order.payerEmail) }
        form.add("success_url", successURL)
        form.add("cancel_url", cancelURL)
        form.add("line_items[0][quantity]", "1")
        form.add("metadata", metadata: metadata(order.reference))
        return form
    }

    private func session(_ form: StripeForm, idempotencyKey: String, logger: Logger) async throws -> HostedCheckout {
        let answer = try await post("/v1/checkout/sessions", form, idempotencyKey: idempotencyKey, logger: logger)
        let session = try api.decode(StripeWire.Session.self, from: answer, logger: logger)
        guard let url = session.url else { throw PaymentProviderError.unavailable("Stripe answered a Checkout Session without a url") }
        return HostedCheckout(id: session.id, url: url, sandboxURL: nil)
    }

    private var authorization: (String, String) { ("Authorization", "Bearer \(secretKey)") }

    private func get(_ path: String, logger: Logger) async throws -> ProviderHTTP.Answer {
        try Self.refusal(await api.send(.GET, path, headers: [authorization], body: nil, logger: logger))
    }

    private func post(_ path: String, _ form: StripeForm, idempotencyKey: String?, logger: Logger) async throws -> ProviderHTTP.Answer {
        var headers = [authorization, ("Content-Type", "application/x-www-form-urlencoded")]
        if let idempotencyKey { headers.append(("Idempotency-Key", idempotencyKey)) }
        return try Self.refusal(await api.send(.POST, path, headers: headers, body: Data(form.encoded.utf8), logger: logger))
    }

    private enum StripeRefusal: Error {
        case declined(StripeWire.PaymentIntent)
    }

    /// A 4xx becomes `.rejectedByProvider` with Stripe's message, except a declined card, whose PaymentIntent is the answer.
    private static func refusal(_ answer: ProviderHTTP.Answer) throws -> ProviderHTTP.Answer {
        guard answer.status >= 400 else { return answer }
        let error = try? JSONDecoder().decode(StripeWire.ErrorEnvelope.self, from: answer.body).error
        if error?.type == "card_error", let intent = error?.payment_intent { throw StripeRefusal.declined(intent) }
        let code = error?.code.map { " (\($0))" } ?? ""
        throw PaymentProviderError.rejectedByProvider(status: answer.status, message: (error?.message ?? "Stripe refused the request") + code)
    }

    /// Stripe ids are `prefix_` and letters and digits; anything else would change the path asked for.
    private static func objectID(_ id: String, prefix: String) throws -> String {
        guard id.hasPrefix(prefix), id.count <= 255, id.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
            throw PaymentProviderError.rejectedByProvider(status: 404, message: "Not a Stripe PaymentIntent id")
        }
        return id
    }

    static func metadata(_ reference: PaymentReference) -> [String: String] {
        [
            "tenant_id": reference.tenantID.uuidString.lowercased(), "plan": reference.plan,
            "payment_id": reference.paymentID.uuidString.lowercased(), "reference": reference.description,
        ]
    }

    static func normalise(_ intent: StripeWire.PaymentIntent) throws -> ProviderPayment {
        let charge = intent.latest_charge?.charge
        let currency = intent.currency.uppercased()
        let refunded = charge?.amount_refunded.flatMap { $0 > 0 ? Money(minorUnits: $0, currency: currency) : nil }
        var status = status(intent.status, failed: intent.last_payment_error != nil)
        if status == .approved, charge?.refunded == true { status = .refunded }
        return ProviderPayment(
            id: intent.id,
            status: status,
            statusDetail: intent.last_payment_error.flatMap { $0.decline_code ?? $0.code } ?? intent.status,
            amount: Money(minorUnits: intent.amount, currency: currency),
            refundedAmount: refunded,
            paymentMethodID: charge?.payment_method_details.flatMap { $0.card?.brand ?? $0.type },
            reference: intent.metadata?["reference"],
            createdAt: intent.created.map { Date(timeIntervalSince1970: TimeInterval($0)) },
            approvedAt: status == .approved ? charge?.created.map { Date(timeIntervalSince1970: TimeInterval($0)) } : nil,
            threeDSInfo: nil,
            nextAction: intent.status == "requires_action" ? intent.next_action.map {
                PaymentNextAction(type: $0.type, redirectURL: $0.redirect_to_url?.url, clientSecret: intent.client_secret)
            } : nil
        )
    }

    /// PaymentIntent statuses. `requires_payment_method` after a failed attempt is a rejection;
    /// before any attempt, and every step still under way (3-D Secure, processing), is pending.
    static func status(_ status: String, failed: Bool) -> ProviderPayment.Status {
        switch status {
        case "succeeded": .approved
        case "canceled": .cancelled
        case "requires_payment_method": failed ? .rejected : .pending
        default: .pending
        }
    }
}
