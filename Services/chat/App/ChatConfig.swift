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
    // Conversations, responders, quota (issue 10, conversations part).
    /// billing, asked for each tenant's entitlement before a user message.
    package var billingURL: String
    package var jwksRefreshSeconds = AccessTokenVerifier.defaultRefreshSeconds
    /// `builtin` (offline, from the knowledge base) or `openai`; a tenant's agent may pick another.
    package var responder = "builtin"
    package var openAIBaseURL = "https://api.openai.com/v1"
    package var openAIKey: String?
    package var openAIModel = "gpt-4o-mini"
    /// No token from the provider within it ends the reply with an error event.
    package var openAITimeoutSeconds = 30
    /// How long billing's entitlement answer is reused (at most 10 s).
    package var entitlementCacheSeconds = 10
    /// How long messages are allowed while billing cannot be asked and no answer of it is known.
    package var quotaGraceSeconds = 300

    // The knowledge base and attachments (`jwksRefreshSeconds` above checks admins' tokens too).
    /// Where knowledge-base files and attachments are kept (`STORAGE_DIR`); chat's own directory,
    /// shared by its replicas; created at start if missing.
    package var storageDirectory = ".data/chat-storage"
    /// poppler's `pdftotext`, by name on `PATH` or by path (`PDFTOTEXT_PATH`).
    package var pdftotextPath = "pdftotext"
    /// How long `pdftotext` may run on one PDF before it is killed and the document fails.
    package var pdfTimeoutSeconds = 60
    /// How long a worker holds a document it claimed; a crashed worker's document is claimed
    /// again after it. Must outlast the processing of one document.
    package var knowledgeLeaseSeconds = 300
    /// Claims of a document before it fails for good.
    package var knowledgeMaxAttempts = 3
    /// Documents one replica processes side by side.
    package var knowledgeConcurrency = 2
    // Speed (bench/chat.sh).
    /// Connections to the OpenAI-compatible provider one replica may hold at once: each streamed
    /// answer holds one (HTTP/1) for its whole length, so this bounds the openai streams in flight.
    package var openAIMaxConnections = 10_000

    // The storage sweep (files without rows, rows without files).
    /// How often each replica sweeps chat's storage directory.
    package var storageSweepIntervalSeconds = 3_600
    /// Files and rows younger than this are left alone (an upload may be between its file and its row).
    package var storageSweepGraceSeconds = 600

    package init(
        common: CommonConfig, jwksURL: String, tenancyURL: String, sessionMaxAgeDays: Int = 30,
        streamTokenDelayMilliseconds: Int = 40, tenantCacheSeconds: Int = 10, agentCacheSeconds: Int = 5,
        billingURL: String = "http://127.0.0.1:8083"
    ) {
        self.common = common
        self.jwksURL = jwksURL
        self.tenancyURL = tenancyURL
        self.sessionMaxAgeDays = sessionMaxAgeDays
        self.streamTokenDelayMilliseconds = streamTokenDelayMilliseconds
        self.tenantCacheSeconds = tenantCacheSeconds
        self.agentCacheSeconds = agentCacheSeconds
        self.billingURL = billingURL
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
        // Conversations, responders, quota.
        self.billingURL = try settings.url("BILLING_URL")
        self.jwksRefreshSeconds = try settings.jwksRefreshSeconds()
        self.responder = settings.string("CHAT_RESPONDER", default: "builtin")
        guard ["builtin", "openai"].contains(responder) else {
            throw ConfigurationError(variable: "CHAT_RESPONDER", problem: "must be builtin or openai")
        }
        self.openAIBaseURL = try settings.url("OPENAI_BASE_URL", default: "https://api.openai.com/v1")
        self.openAIKey = settings.optionalString("OPENAI_API_KEY", isSecret: true)
        self.openAIModel = settings.string("OPENAI_MODEL", default: "gpt-4o-mini")
        self.openAITimeoutSeconds = try settings.int("OPENAI_TIMEOUT_SECONDS", default: 30, range: 1...600)
        self.entitlementCacheSeconds = try settings.int("ENTITLEMENT_CACHE_SECONDS", default: 10, range: 0...10)
        self.quotaGraceSeconds = try settings.int("QUOTA_GRACE_SECONDS", default: 300, range: 0...86_400)
        // The knowledge base and attachments.
        self.storageDirectory = settings.string("STORAGE_DIR", default: ".data/chat-storage")
        self.pdftotextPath = settings.string("PDFTOTEXT_PATH", default: "pdftotext")
        self.pdfTimeoutSeconds = try settings.int("KNOWLEDGE_PDF_TIMEOUT_SECONDS", default: 60, range: 1...600)
        self.knowledgeLeaseSeconds = try settings.int("KNOWLEDGE_LEASE_SECONDS", default: 300, range: 1...3_600)
        self.knowledgeMaxAttempts = try settings.int("KNOWLEDGE_MAX_ATTEMPTS", default: 3, range: 1...20)
        self.knowledgeConcurrency = try settings.int("KNOWLEDGE_WORKER_CONCURRENCY", default: 2, range: 1...16)
        // The storage sweep.
        self.storageSweepIntervalSeconds = try settings.int("STORAGE_SWEEP_INTERVAL_SECONDS", default: 3_600, range: 1...86_400)
        self.storageSweepGraceSeconds = try settings.int("STORAGE_SWEEP_GRACE_SECONDS", default: 600, range: 60...604_800)
        // Speed.
        self.openAIMaxConnections = try settings.int("OPENAI_MAX_CONNECTIONS", default: 10_000, range: 1...100_000)
    }
}
