import ServiceCore

/// Everything billing reads from its environment.
package struct BillingConfig: Sendable {
    package var common: CommonConfig
    package var jwksURL: String
    /// How often the JWKS is refetched (`JWKS_REFRESH_SECONDS`).
    package var jwksRefreshSeconds: Int
    package var trialDays: Int
    /// Payment providers' credentials: nil when the provider is not configured.
    package var mercadoPago: MercadoPagoConfig?
    package var stripe: StripeConfig?

    // Billing core (issue 9, part B1): plans, the lifecycle, the provider and its webhooks.
    /// Where `billing.payment_completed` goes (`TENANCY_URL`).
    package var tenancyURL: String
    /// `BILLING_PLANS` (JSON) or seed 000's plans.
    var plans: PlanCatalog
    /// `PAYMENT_PROVIDER`: `sandbox` (default), `mercadopago` or `stripe`.
    var paymentProvider: PaymentProviderKind
    /// `SUBSCRIPTION_GRACE_DAYS`: days in `past_due` before `canceled`.
    package var graceDays: Int
    /// `BILLING_SCHEDULER_SECONDS`: how often the lifecycle job runs.
    package var schedulerIntervalSeconds: Int
    /// `PAYMENT_WEBHOOK_TOLERANCE_SECONDS`: how old (or early) a webhook's signed `ts` may be.
    package var webhookToleranceSeconds: Int
    /// `MERCADOPAGO_WEBHOOK_SECRET`: verifies MercadoPago's `x-signature`.
    package var mercadopagoWebhookSecret: String?
    /// `PAYMENT_LOCALE` (`es-CL`), shown to the payer's browser SDK.
    package var paymentLocale: String
    /// `PAYMENT_SUCCESS_URL`: where a hosted checkout returns the payer.
    package var paymentReturnURL: String
    package var sandbox: SandboxSettings

    /// The sandbox provider's settings.
    package struct SandboxSettings: Sendable {
        /// `SANDBOX_WEBHOOK_URL`: where it sends its notifications (default this service's own
        /// webhook on 127.0.0.1); `none` sends none.
        package var webhookURL: String?
        /// `SANDBOX_WEBHOOK_SECRET`: what it signs them with (and the webhook verifies, under the sandbox).
        package var webhookSecret: String
        /// `SANDBOX_PENDING_APPROVAL_SECONDS`: how long `tok_sandbox_pending` stays pending.
        package var pendingApprovalSeconds: Double
    }

    package init(common: CommonConfig, jwksURL: String, trialDays: Int = 14, tenancyURL: String = "http://127.0.0.1:8082") {
        self.common = common
        self.jwksURL = jwksURL
        self.jwksRefreshSeconds = AccessTokenVerifier.defaultRefreshSeconds
        self.trialDays = trialDays
        self.tenancyURL = tenancyURL
        self.plans = .defaults
        self.paymentProvider = .sandbox
        self.graceDays = 7
        self.schedulerIntervalSeconds = 60
        self.webhookToleranceSeconds = 300
        self.mercadopagoWebhookSecret = nil
        self.paymentLocale = "es-CL"
        self.paymentReturnURL = "http://localhost:3000/dashboard?payment=success"
        self.sandbox = SandboxSettings(webhookURL: nil, webhookSecret: "sandbox-webhook-secret", pendingApprovalSeconds: 5)
    }

    package init(settings: Settings) throws {
        self.common = try CommonConfig(settings: settings, defaultPort: 8083)
        self.jwksURL = try settings.url("JWKS_URL")
        self.jwksRefreshSeconds = try settings.jwksRefreshSeconds()
        self.trialDays = try settings.int("TRIAL_DAYS", default: 14, range: 1...365)
        self.tenancyURL = try settings.url("TENANCY_URL")
        self.plans = try settings.optionalString("BILLING_PLANS").map { try PlanCatalog(json: $0) } ?? .defaults
        let provider = settings.string("PAYMENT_PROVIDER", default: "sandbox").lowercased()
        guard let kind = PaymentProviderKind(rawValue: provider) else {
            throw ConfigurationError(variable: "PAYMENT_PROVIDER", problem: "must be sandbox, mercadopago or stripe, got '\(provider)'")
        }
        self.paymentProvider = kind
        self.graceDays = try settings.int("SUBSCRIPTION_GRACE_DAYS", default: 7, range: 0...90)
        self.schedulerIntervalSeconds = try settings.int("BILLING_SCHEDULER_SECONDS", default: 60, range: 1...86_400)
        self.webhookToleranceSeconds = try settings.int("PAYMENT_WEBHOOK_TOLERANCE_SECONDS", default: 300, range: 10...86_400)
        self.mercadopagoWebhookSecret = settings.optionalString("MERCADOPAGO_WEBHOOK_SECRET", isSecret: true)
        self.paymentLocale = settings.string("PAYMENT_LOCALE", default: "es-CL")
        self.paymentReturnURL = try settings.url("PAYMENT_SUCCESS_URL", default: "http://localhost:3000/dashboard?payment=success")
        let ownWebhook = "http://127.0.0.1:\(common.server.port)/api/payments/webhook"
        let webhookURL = settings.string("SANDBOX_WEBHOOK_URL", default: ownWebhook)
        self.sandbox = SandboxSettings(
            webhookURL: webhookURL == "none" ? nil : try settings.url("SANDBOX_WEBHOOK_URL", default: ownWebhook),
            webhookSecret: settings.optionalString("SANDBOX_WEBHOOK_SECRET", isSecret: true) ?? "sandbox-webhook-secret",
            pendingApprovalSeconds: Double(try settings.int("SANDBOX_PENDING_APPROVAL_SECONDS", default: 5, range: 0...3_600))
        )
        self.mercadoPago = try MercadoPagoConfig(settings: settings)
        self.stripe = try StripeConfig(settings: settings)
    }

    /// The secret `POST /api/payments/webhook` verifies with: the sandbox's own under the sandbox.
    var webhookSecret: String? {
        paymentProvider == .sandbox ? sandbox.webhookSecret : mercadopagoWebhookSecret
    }
}
