import NIOCore
import ServiceCore

/// Stripe's credentials and endpoints, read once at start; nil from `init(settings:)` when neither
/// `STRIPE_SECRET_KEY` nor `STRIPE_WEBHOOK_SECRET` is set. The API client needs the secret key; the
/// webhook endpoint works whenever the webhook secret is set.
package struct StripeConfig: Sendable {
    /// `STRIPE_SECRET_KEY` (`sk_test_…` / `sk_live_…`), sent as `Authorization: Bearer`.
    package var secretKey: String?
    /// `STRIPE_PUBLISHABLE_KEY` (`pk_…`): what the payer's browser uses.
    package var publishableKey: String?
    /// `STRIPE_API_URL` (default `https://api.stripe.com`): tests point it at a local server.
    package var apiURL: String
    /// `STRIPE_WEBHOOK_SECRET` (`whsec_…`): the key of `Stripe-Signature`.
    package var webhookSecret: String?
    /// `STRIPE_WEBHOOK_TOLERANCE_SECONDS` (default 300, Stripe's own): how far a signature's
    /// timestamp may be from now.
    package var webhookTolerance: Int
    /// `STRIPE_TIMEOUT_SECONDS` (default 20): the deadline of one call to Stripe.
    package var timeout: TimeAmount

    package static let defaultAPIURL = "https://api.stripe.com"

    package init(
        secretKey: String?, publishableKey: String? = nil, apiURL: String = defaultAPIURL, webhookSecret: String? = nil,
        webhookTolerance: Int = StripeSignature.defaultTolerance, timeout: TimeAmount = .seconds(20)
    ) {
        self.secretKey = secretKey
        self.publishableKey = publishableKey
        self.apiURL = apiURL
        self.webhookSecret = webhookSecret
        self.webhookTolerance = webhookTolerance
        self.timeout = timeout
    }

    package init?(settings: Settings) throws {
        let secretKey = settings.optionalString("STRIPE_SECRET_KEY", isSecret: true)
        let webhookSecret = settings.optionalString("STRIPE_WEBHOOK_SECRET", isSecret: true)
        guard secretKey != nil || webhookSecret != nil else { return nil }
        if let secretKey, !(secretKey.hasPrefix("sk_") || secretKey.hasPrefix("rk_")) {
            throw ConfigurationError(variable: "STRIPE_SECRET_KEY", problem: "must be a Stripe secret key (sk_… or rk_…)")
        }
        if let webhookSecret, !webhookSecret.hasPrefix("whsec_") {
            throw ConfigurationError(variable: "STRIPE_WEBHOOK_SECRET", problem: "must be a webhook signing secret (whsec_…)")
        }
        self.init(
            secretKey: secretKey,
            publishableKey: settings.optionalString("STRIPE_PUBLISHABLE_KEY"),
            apiURL: try settings.url("STRIPE_API_URL", default: Self.defaultAPIURL),
            webhookSecret: webhookSecret,
            webhookTolerance: try settings.int("STRIPE_WEBHOOK_TOLERANCE_SECONDS", default: StripeSignature.defaultTolerance, range: 1...86_400),
            timeout: .seconds(Int64(try settings.int("STRIPE_TIMEOUT_SECONDS", default: 20, range: 1...120)))
        )
    }
}
