import Hummingbird
import InternalAPI
import NIOPosix
import ServiceCore

/// Builds the chat service: widget sessions, conversations answered by the responders, history and traces.
package func buildChatApplication(config: ChatConfig) async throws -> some ApplicationProtocol {
    let foundation = try await ServiceFoundation(name: "chat", config: config.common)
    let sessions = PostgresSessionRepository(client: foundation.database)
    let tenancy = foundation.client(for: "tenancy", baseURL: config.tenancyURL)
    let directory = TenantDirectory(tenancy: tenancy, ttl: .seconds(config.tenantCacheSeconds))
    let agents = InternalLookupCache<AgentConfiguration>(client: tenancy, ttl: .seconds(config.agentCacheSeconds))

    // Conversations (issue 10): responders, quota through billing, answers reported to billing
    // through the outbox, history and traces.
    let billing = foundation.client(for: "billing", baseURL: config.billingURL)
    // chat's outbox: answered messages to billing; a tenant's first processed knowledge-base document to tenancy.
    let outbox = Outbox(routes: [MessageAnswered.type: [billing], KnowledgeBaseUploaded.type: [tenancy]])
    let relay = OutboxRelay(outbox: outbox, database: foundation.database, metrics: foundation.metrics, logger: foundation.logger)
    let verifier = foundation.accessTokenVerifier(jwksURL: config.jwksURL, refreshSeconds: config.jwksRefreshSeconds)
    let openAI = OpenAISettings(
        baseURL: config.openAIBaseURL, apiKey: config.openAIKey, model: config.openAIModel, timeout: .seconds(config.openAITimeoutSeconds)
    )
    // The provider's streams get a client of their own: the internal one allows 16 connections per
    // host, which held every openai answer past the 16th in its queue until it failed.
    let providerHTTP = OpenAIResponder.makeClient(maxConnections: config.openAIMaxConnections, timeout: openAI.timeout)
    let responders = Responders(
        byName: [
            "builtin": BuiltinResponder(tokenDelay: .milliseconds(config.streamTokenDelayMilliseconds)),
            "openai": OpenAIResponder(settings: openAI, http: providerHTTP, logger: foundation.logger),
        ],
        defaultName: config.responder
    )
    let conversations = PostgresConversationRepository(client: foundation.database, outbox: outbox)
    let exchange = ChatExchange(
        sessions: sessions, directory: directory, agents: agents, conversations: conversations,
        retriever: PostgresKnowledgeRetriever(client: foundation.database), responders: responders,
        quota: QuotaGate(billing: billing, ttl: .seconds(config.entitlementCacheSeconds), grace: .seconds(config.quotaGraceSeconds))
    )
    let access = ChatAccess(exchange: exchange, verifier: verifier)

    let routes = foundation.makeRouter(bodyLimits: [
        KnowledgeController.uploadPath: KnowledgeBase.maxBodyBytes, AttachmentsController.uploadPath: AttachmentsController.maxBodyBytes,
        AdminKnowledgeController.uploadPath: KnowledgeBase.maxBodyBytes,
    ])
    SessionsController(sessions: sessions, directory: directory, maxAgeDays: config.sessionMaxAgeDays)
        .addRoutes(to: routes.group("api/sessions"))
    ChatKitController(exchange: exchange).addRoutes(to: routes)
    ChatController(exchange: exchange).addRoutes(api: routes.group("api"), publicWidgets: routes.group("api/public/widgets"))
    ConversationsController(access: access, conversations: conversations).addRoutes(to: routes.group("api"))
    TracesController(access: access, traces: PostgresTraceRepository(client: foundation.database))
        .addRoutes(to: routes.group("api/admin/tenants"))
    // tenancy's: usage counts for its administration, and its tenant events (a suspended tenant's
    // cached entry is dropped, so its sessions stop at once).
    let fromTenancy = foundation.internalGroup(routes, accepting: ["tenancy"])
    InternalUsageController(database: foundation.database).addRoutes(to: fromTenancy)
    let forget: EventReceiver.Handler = { event, _, _ in directory.forget(try event.decodePayload(as: TenantChanged.self).tenantId) }
    EventReceiver(database: foundation.database, handlers: Dictionary(uniqueKeysWithValues: TenantChanged.types.map { ($0, forget) }))
        .addRoutes(to: fromTenancy)
    // The knowledge base (tenant admins) with its ingestion worker, and widget attachments; files in
    // chat's STORAGE_DIR. The outbox above tells tenancy of a tenant's first processed document.
    let storage = try FileSystemAssetStorage(directory: config.storageDirectory)
    let knowledge = PostgresKnowledgeRepository(client: foundation.database, outbox: outbox)
    let knowledgeBase = KnowledgeBase(documents: knowledge, storage: storage, threadPool: .singleton)
    KnowledgeController(knowledge: knowledgeBase, verifier: verifier).addRoutes(to: routes.group("api/knowledge-base"))
    // Seed 001's knowledge administration: the same operations for a named tenant, in batches.
    AdminKnowledgeController(knowledge: knowledgeBase, verifier: verifier).addRoutes(to: routes.group("api/admin/knowledge"))
    let ingestion = KnowledgeIngestionWorker(
        repository: knowledge, storage: storage,
        extractor: TextExtractor(
            pdf: PDFText(executable: config.pdftotextPath, timeout: .seconds(config.pdfTimeoutSeconds), maxTextBytes: 32 * 1_048_576),
            maxTextBytes: 32 * 1_048_576
        ),
        language: { tenantID, logger in try await directory.tenant(id: tenantID, logger: logger)?.language }, database: foundation.database,
        settings: .init(
            batchSize: config.knowledgeConcurrency, lease: .seconds(config.knowledgeLeaseSeconds), maxAttempts: config.knowledgeMaxAttempts
        ),
        logger: foundation.logger
    )
    AttachmentsController(
        attachments: PostgresAttachmentRepository(client: foundation.database), sessions: sessions, storage: storage, threadPool: .singleton,
        settings: InternalLookupCache(client: tenancy, ttl: .seconds(config.tenantCacheSeconds))
    ).addRoutes(to: routes.group("attachments"))
    // Files without rows and rows without files, left by crashes and failed removals.
    let sweep = ChatStorageSweep(
        storage: storage, database: foundation.database, grace: .seconds(config.storageSweepGraceSeconds),
        interval: .seconds(config.storageSweepIntervalSeconds), logger: foundation.logger
    )
    return foundation.makeApplication(
        routes: routes, migrations: ChatMigrations.all + ConversationMigrations.all,
        services: [verifier, relay, ingestion, sweep, HTTPClientService(client: providerHTTP)]
    )
}
