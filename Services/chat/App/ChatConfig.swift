import ServiceCore

/// Everything chat reads from its environment.
package struct ChatConfig: Sendable {
    package var common: CommonConfig
    package var jwksURL: String
    package var tenancyURL: String
    package var sessionMaxAgeDays: Int
    /// Pause between streamed tokens of the built-in responder.
    package var streamTokenDelayMilliseconds: Int
    /// How long tenant facts fetched from tenancy are reused.
    package var tenantCacheSeconds: Int
    /// How long a tenant's agent configuration from tenancy is reused: a change reaches chat within it.
    package var agentCacheSeconds: Int

    package init(
        common: CommonConfig, jwksURL: String, tenancyURL: String, sessionMaxAgeDays: Int = 30,
        streamTokenDelayMilliseconds: Int = 40, tenantCacheSeconds: Int = 10, agentCacheSeconds: Int = 5
    ) {
        self.common = common
        self.jwksURL = jwksURL
        self.tenancyURL = tenancyURL
        self.sessionMaxAgeDays = sessionMaxAgeDays
        self.streamTokenDelayMilliseconds = streamTokenDelayMilliseconds
        self.tenantCacheSeconds = tenantCacheSeconds
        self.agentCacheSeconds = agentCacheSeconds
    }

    package init(settings: Settings) throws {
        self.common = try CommonConfig(settings: settings, defaultPort: 8084)
        self.jwksURL = try settings.url("JWKS_URL")
        self.tenancyURL = try settings.url("TENANCY_URL")
        self.sessionMaxAgeDays = try settings.int("SESSION_MAX_AGE_DAYS", default: 30, range: 1...365)
        self.streamTokenDelayMilliseconds = try settings.int("CHAT_STREAM_TOKEN_DELAY_MS", default: 40, range: 0...5_000)
        // At most 10 s by default: a change of a tenant reaches every replica that fast, even the
        // ones tenancy's event (which drops the entry at once) did not reach.
        self.tenantCacheSeconds = try settings.int("TENANT_CACHE_SECONDS", default: 10, range: 0...3_600)
        // At most 10 s: an admin's change to the agent shows in chat within that.
        self.agentCacheSeconds = try settings.int("AGENT_CONFIG_CACHE_SECONDS", default: 5, range: 0...10)
    }
}
