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

    package init(common: CommonConfig, jwksURL: String, trialDays: Int = 14) {
        self.common = common
        self.jwksURL = jwksURL
        self.jwksRefreshSeconds = AccessTokenVerifier.defaultRefreshSeconds
        self.trialDays = trialDays
    }

    package init(settings: Settings) throws {
        self.common = try CommonConfig(settings: settings, defaultPort: 8083)
        self.jwksURL = try settings.url("JWKS_URL")
        self.jwksRefreshSeconds = try settings.jwksRefreshSeconds()
        self.trialDays = try settings.int("TRIAL_DAYS", default: 14, range: 1...365)
        self.mercadoPago = try MercadoPagoConfig(settings: settings)
        self.stripe = try StripeConfig(settings: settings)
    }
}
