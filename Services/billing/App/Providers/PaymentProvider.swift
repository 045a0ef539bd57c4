import Foundation
import Logging

// The seam between billing and whoever moves the money. `PAYMENT_PROVIDER` picks the provider of
// new payments (`sandbox`, the offline default; `mercadopago`; `stripe`). Billing's own records
// (payments, subscriptions, their transitions) never depend on which one charged; a provider's
// answer is always re-read from the provider (`payment(id:)`), never trusted from a webhook body.

/// An amount of money in integer minor units of an ISO 4217 currency (CLP has no minor unit, so
/// 19,990 CLP is `Money(minorUnits: 19_990, currency: "CLP")`). Never floating point.
struct Money: Sendable, Hashable, Codable {
    var minorUnits: Int64
    /// Upper-case ISO 4217 code.
    var currency: String
}

/// Which provider a payment went through.
enum PaymentProviderKind: String, Sendable, Codable, CaseIterable {
    case sandbox, mercadopago, stripe
}

/// A payment as its provider reports it, normalised.
struct ProviderPayment: Sendable, Equatable {
    enum Status: String, Sendable, Codable {
        /// Money taken.
        case approved
        /// Waiting for the payer or the provider (MercadoPago's `pending`, `in_process`, `authorized`).
        case pending
        case rejected
        /// Cancelled before it was taken (MercadoPago's `cancelled`, an expired checkout).
        case cancelled
        /// Given back in full (partial refunds keep `approved` and show in `refundedAmount`).
        case refunded
        case chargedBack
    }

    /// The provider's id of the payment.
    var id: String
    var status: Status
    /// The provider's reason code (`cc_rejected_insufficient_amount`, `accredited`, …).
    var statusDetail: String?
    var amount: Money
    var refundedAmount: Money?
    /// `visa`, `master`, `card`, …
    var paymentMethodID: String?
    /// What billing sent as `external_reference` / `client_reference_id`: see `PaymentReference`.
    var reference: String?
    var createdAt: Date?
    var approvedAt: Date?
    /// A 3-D Secure challenge the payer must pass before the payment can be approved.
    var threeDSInfo: ThreeDSInfo?
    /// What the payer's browser must do next when the provider holds the payment for the payer
    /// (Stripe's `requires_action`: 3-D Secure through Stripe.js, or a redirect).
    var nextAction: PaymentNextAction? = nil
}

/// Stripe's `next_action` of a PaymentIntent, reduced to what a browser needs: `use_stripe_sdk`
/// (Stripe.js `handleNextAction` with the client secret) or `redirect_to_url` (send the payer there).
struct PaymentNextAction: Sendable, Equatable, Codable {
    var type: String
    var redirectURL: String?
    var clientSecret: String?
}

struct ThreeDSInfo: Sendable, Equatable, Codable {
    var externalResourceURL: String
    var creq: String
}

/// What billing asks a provider to charge: one plan period of one tenant.
struct PaymentOrder: Sendable, Equatable {
    var reference: PaymentReference
    var amount: Money
    /// Shown to the payer (`Pro plan`).
    var title: String
    var payerEmail: String
    /// Sent as `X-Idempotency-Key` / `Idempotency-Key`: a retry with the same key never charges twice.
    var idempotencyKey: String
}

/// Card details tokenised in the payer's browser (MercadoPago Bricks, or the sandbox's test tokens
/// `tok_sandbox_approved`, `tok_sandbox_rejected`, `tok_sandbox_pending`).
struct CardPayment: Sendable, Equatable {
    var token: String
    var paymentMethodID: String
    var installments: Int
    var issuerID: Int?
    var identificationType: String?
    var identificationNumber: String?
    var payerFirstName: String?
    var payerLastName: String?
}

/// A hosted page the payer is sent to (MercadoPago Checkout Pro preference, Stripe Checkout Session).
struct HostedCheckout: Sendable, Equatable {
    var id: String
    /// Where to send the payer.
    var url: String
    /// The provider's test-mode page, when it has a separate one (MercadoPago's `sandbox_init_point`).
    var sandboxURL: String?
}

struct ProviderRefund: Sendable, Equatable {
    var id: String
    var amount: Money
    /// `approved`, `pending`, `rejected` (MercadoPago) / `succeeded`, `pending`, `failed` (Stripe).
    var status: String
}

struct PaymentMethod: Sendable, Equatable, Codable {
    var id: String
    var name: String
    var paymentTypeID: String
    var thumbnail: String
    var secureThumbnail: String
    var minAllowedAmount: Int64
    var maxAllowedAmount: Int64
}

struct CardIssuer: Sendable, Equatable, Codable {
    var id: Int
    var name: String
    var thumbnail: String
    var secureThumbnail: String
}

/// The `external_reference` billing gives every payment and checkout: which tenant pays for which
/// plan, under which of billing's own payment ids. Written `tenant:<uuid>;plan:<id>;payment:<uuid>`.
struct PaymentReference: Sendable, Hashable {
    var tenantID: UUID
    var plan: String
    var paymentID: UUID

    var description: String { "tenant:\(tenantID.uuidString.lowercased());plan:\(plan);payment:\(paymentID.uuidString.lowercased())" }

    init(tenantID: UUID, plan: String, paymentID: UUID) {
        self.tenantID = tenantID
        self.plan = plan
        self.paymentID = paymentID
    }

    /// nil unless `text` is exactly what `description` writes.
    init?(_ text: String) {
        var fields: [Substring: Substring] = [:]
        for part in text.split(separator: ";", omittingEmptySubsequences: false) {
            guard let colon = part.firstIndex(of: ":") else { return nil }
            fields[part[..<colon]] = part[part.index(after: colon)...]
        }
        guard fields.count == 3, let tenant = fields["tenant"].flatMap({ UUID(uuidString: String($0)) }),
            let plan = fields["plan"], !plan.isEmpty, let payment = fields["payment"].flatMap({ UUID(uuidString: String($0)) })
        else { return nil }
        self.init(tenantID: tenant, plan: String(plan), paymentID: payment)
        guard description == text else { return nil }
    }
}

/// Errors a provider call ends in, mapped by billing to `{detail}` answers: 502 for `.rejectedByProvider`
/// and `.unavailable`, 504 for `.timedOut`. A call that timed out may still have charged: billing
/// keeps the payment `pending` and reconciles it from the provider later, never records it as paid.
enum PaymentProviderError: Error, Equatable {
    /// The provider answered 4xx: the request itself is wrong (bad token, unknown method); its message.
    case rejectedByProvider(status: Int, message: String)
    /// The provider answered 5xx or could not be reached.
    case unavailable(String)
    /// No answer within the configured time.
    case timedOut
    /// This provider does not offer the operation (the sandbox has no customer portal).
    case unsupported(String)
}

/// One payment provider. Implementations: `SandboxPaymentProvider` (offline), `MercadoPagoClient`,
/// `StripeClient`; each is a thin client of the provider's documented HTTP API.
protocol PaymentProvider: Sendable {
    var kind: PaymentProviderKind { get }
    /// The key the payer's browser uses (MercadoPago public key, Stripe publishable key); nil for the sandbox.
    var publicKey: String? { get }
    /// Whether payments are test payments (sandbox, MercadoPago test credentials, Stripe test mode).
    var isTestMode: Bool { get }

    /// A hosted checkout for `order` (Checkout Pro preference / Checkout Session), returning to `returnURL`.
    func createCheckout(_ order: PaymentOrder, returnURL: String, logger: Logger) async throws -> HostedCheckout
    /// Charges a tokenised card directly (Checkout Bricks). The answer may be `pending` (3-D Secure, review).
    func charge(_ order: PaymentOrder, card: CardPayment, logger: Logger) async throws -> ProviderPayment
    /// The payment as the provider holds it now: the only source billing trusts for a payment's state.
    func payment(id: String, logger: Logger) async throws -> ProviderPayment
    /// The payment billing created under `reference` (sent with `idempotencyKey`) when billing never
    /// learnt its id (the creation timed out): nil when the provider has none, so nothing was charged.
    func findPayment(reference: PaymentReference, idempotencyKey: String, logger: Logger) async throws -> ProviderPayment?
    /// Refunds `amount` of a payment (nil: the rest of it), at most once per `idempotencyKey`.
    func refund(paymentID: String, amount: Money?, idempotencyKey: String, logger: Logger) async throws -> ProviderRefund
    func paymentMethods(logger: Logger) async throws -> [PaymentMethod]
    func cardIssuers(paymentMethodID: String, logger: Logger) async throws -> [CardIssuer]
}
