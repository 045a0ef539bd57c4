import ServiceCore

/// Everything tenancy reads from its environment.
package struct TenancyConfig: Sendable {
    package var common: CommonConfig
    package var jwksURL: String
    /// How often the JWKS is refetched (`JWKS_REFRESH_SECONDS`).
    package var jwksRefreshSeconds: Int
    package var authURL: String
    package var billingURL: String
    /// Where chat's internal routes are: usage counts, and tenant events through the outbox.
    package var chatURL: String
    /// Requests per minute a new tenant may make through the gateway.
    package var defaultRateLimitPerMinute: Int
    /// A registration still `provisioning` after this long is abandoned and gets cleaned up.
    package var abandonedRegistrationSeconds: Int
    /// Where branding files are kept (`STORAGE_DIR`); created at start if missing.
    package var storageDirectory: String

    package init(
        common: CommonConfig, jwksURL: String, authURL: String, billingURL: String, chatURL: String, defaultRateLimitPerMinute: Int = 60,
        abandonedRegistrationSeconds: Int = 300, storageDirectory: String = ".data/storage"
    ) {
        self.common = common
        self.jwksURL = jwksURL
        self.jwksRefreshSeconds = AccessTokenVerifier.defaultRefreshSeconds
        self.authURL = authURL
        self.billingURL = billingURL
        self.chatURL = chatURL
        self.defaultRateLimitPerMinute = defaultRateLimitPerMinute
        self.abandonedRegistrationSeconds = abandonedRegistrationSeconds
        self.storageDirectory = storageDirectory
    }

    package init(settings: Settings) throws {
        self.common = try CommonConfig(settings: settings, defaultPort: 8082)
        self.jwksURL = try settings.url("JWKS_URL")
        self.jwksRefreshSeconds = try settings.jwksRefreshSeconds()
        self.authURL = try settings.url("AUTH_URL")
        self.billingURL = try settings.url("BILLING_URL")
        self.chatURL = try settings.url("CHAT_URL")
        self.defaultRateLimitPerMinute = try settings.int("TENANT_DEFAULT_RATE_LIMIT_PER_MINUTE", default: 60, range: 1...1_000_000)
        // Longer than the slowest registration (three calls of at most 10 s each).
        self.abandonedRegistrationSeconds = try settings.int("ABANDONED_REGISTRATION_SECONDS", default: 300, range: 60...86_400)
        // Under the working directory's `.data`, beside the suite's local database.
        self.storageDirectory = settings.string("STORAGE_DIR", default: ".data/storage")
    }
}
