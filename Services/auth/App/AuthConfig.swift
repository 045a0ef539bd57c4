import ServiceCore

/// Everything auth reads from its environment.
package struct AuthConfig: Sendable {
    package var common: CommonConfig
    /// bcrypt work factor; 12 in production, lower in tests.
    package var bcryptCost: Int
    package var accessTokenLifetimeSeconds: Int
    /// A PEM-encoded P-256 private key; when absent one is generated at first start and kept in the database.
    package var signingKeyPEM: String?

    package init(common: CommonConfig, bcryptCost: Int = 12, accessTokenLifetimeSeconds: Int = 86_400, signingKeyPEM: String? = nil) {
        self.common = common
        self.bcryptCost = bcryptCost
        self.accessTokenLifetimeSeconds = accessTokenLifetimeSeconds
        self.signingKeyPEM = signingKeyPEM
    }

    package init(settings: Settings) throws {
        self.common = try CommonConfig(settings: settings, defaultPort: 8081)
        self.bcryptCost = try settings.int("BCRYPT_COST", default: 12, range: 4...31)
        self.accessTokenLifetimeSeconds = try settings.int("ACCESS_TOKEN_TTL_SECONDS", default: 86_400, range: 60...2_592_000)
        self.signingKeyPEM = settings.optionalString("JWT_SIGNING_KEY", isSecret: true)
    }
}
