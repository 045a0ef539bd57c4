import Hummingbird
import InternalAPI
import NIOPosix
import PostgresNIO
import ServiceCore

/// Builds the tenancy service: tenants, onboarding and agent configuration.
package func buildTenancyApplication(config: TenancyConfig) async throws -> some ApplicationProtocol {
    let foundation = try await ServiceFoundation(name: "tenancy", config: config.common)
    let tenants = PostgresTenantRepository(client: foundation.database)
    let verifier = foundation.accessTokenVerifier(jwksURL: config.jwksURL, refreshSeconds: config.jwksRefreshSeconds)
    let auth = foundation.client(for: "auth", baseURL: config.authURL)
    let billing = foundation.client(for: "billing", baseURL: config.billingURL)
    let registration = RegistrationService(
        tenants: tenants, auth: auth, billing: billing, defaultRateLimitPerMinute: config.defaultRateLimitPerMinute
    )

    // tenancy's events (a tenant renamed, suspended, reactivated) and who receives them.
    let chat = foundation.client(for: "chat", baseURL: config.chatURL)
    let outbox = Outbox(routes: Dictionary(uniqueKeysWithValues: TenantChanged.types.map { ($0, [auth, chat]) }))
    let relay = OutboxRelay(outbox: outbox, database: foundation.database, metrics: foundation.metrics, logger: foundation.logger)

    let registrationRequests = RegistrationRequests(
        client: foundation.database, lifetime: .seconds(24 * 3_600), abandonedAfter: .seconds(config.abandonedRegistrationSeconds),
        fingerprintKey: try RegistrationRequests.fingerprintKey(servicePrivateKeyPEM: config.common.serviceKeyPEM)
    )
    let onboarding = OnboardingProgressStore(client: foundation.database)

    let routes = foundation.makeRouter(bodyLimits: [BrandingController.uploadPath: BrandingController.maxBodyBytes])
    OnboardingController(registration: registration, idempotent: IdempotentRegistration(registration: registration, requests: registrationRequests))
        .addRoutes(to: routes.group("api/onboarding"))
    OnboardingProgressController(tenants: tenants, progress: onboarding, billing: billing, verifier: verifier)
        .addRoutes(to: routes.group("api/onboarding"))
    // Tenant facts: auth (sign-up, suspension at login) and chat (widget sessions).
    InternalTenantsController(tenants: tenants).addRoutes(to: foundation.internalGroup(routes, accepting: ["auth", "chat"]))
    // Events from other services' outboxes, each applied once and only from the service that emits it.
    EventReceiver(
        database: foundation.database,
        handlers: [
            EmailVerified.type: { event, connection, logger in
                let verified = try event.decodePayload(as: EmailVerified.self)
                try await OnboardingSteps.mark(.emailVerified, tenantID: verified.tenantId, on: connection, logger: logger)
            },
            KnowledgeBaseUploaded.type: { event, connection, logger in
                let uploaded = try event.decodePayload(as: KnowledgeBaseUploaded.self)
                try await OnboardingSteps.mark(.knowledgeBaseUploaded, tenantID: uploaded.tenantId, on: connection, logger: logger)
            },
            PaymentCompleted.type: { event, connection, logger in
                let paid = try event.decodePayload(as: PaymentCompleted.self)
                try await OnboardingSteps.mark(.paymentCompleted, tenantID: paid.tenantId, on: connection, logger: logger)
            },
        ],
        senders: [EmailVerified.type: "auth", KnowledgeBaseUploaded.type: "chat", PaymentCompleted.type: "billing"]
    ).addRoutes(to: foundation.internalGroup(routes, accepting: ["auth", "chat", "billing"]))
    // Platform administration (super_admins; a tenant's own admins for its one tenant).
    let admin = routes.group("api/admin").add(middleware: JWTAuthMiddleware(verifier: verifier))
    let adminTenants = PostgresAdminTenantRepository(client: foundation.database, outbox: outbox)
    AdminTenantsController(tenants: adminTenants, creation: TenantCreation(tenants: adminTenants, registration: registration))
        .addRoutes(to: admin)
    PlatformStatsController(tenants: adminTenants, chat: chat).addRoutes(to: admin)
    GatewayPoliciesController(tenants: tenants).addRoutes(to: foundation.internalGroup(routes, "gateway", accepting: ["gateway"]))
    // Themes and branding.
    let themes = ThemeController(themes: PostgresThemeRepository(client: foundation.database), verifier: verifier)
    themes.addPublicRoutes(to: routes.group("api/tenants"))
    themes.addAdminRoutes(to: routes.group("api/admin/tenants"))
    // chat reads a tenant's widget attachment settings from its theme.
    themes.addInternalRoutes(to: foundation.internalGroup(routes, accepting: ["chat"]))
    let storage = try FileSystemAssetStorage(directory: config.storageDirectory)
    let assets = PostgresBrandingRepository(client: foundation.database)
    let branding = BrandingController(assets: assets, storage: storage, verifier: verifier, threadPool: .singleton)
    branding.addRoutes(to: routes.group("api/branding"))
    branding.addPublicRoutes(to: routes.group("api/public/branding"))
    let sweep = OrphanAssetSweep(storage: storage, assets: assets, grace: .seconds(600), interval: .seconds(3600), logger: foundation.logger)
    // Agent configuration (chat reads it), widget configuration, tenant profile and settings.
    let signedIn = JWTAuthMiddleware<AppRequestContext>(verifier: verifier)
    AgentConfigController(agents: PostgresAgentConfigRepository(client: foundation.database)).addRoutes(
        admin: routes.group("api/admin/tenants").add(middleware: signedIn), service: foundation.internalGroup(routes, accepting: ["chat"])
    )
    WidgetConfigController(widgets: JSONSettingsTable(client: foundation.database, table: .widgetConfigs)).addRoutes(
        admin: routes.group("api/admin/widgets").add(middleware: signedIn), open: routes.group("api/public/widgets")
    )
    TenantProfileController(tenants: tenants, settings: TenantSettingsRepository(client: foundation.database), billing: billing)
        .addRoutes(to: routes.group("api/tenant").add(middleware: signedIn))
    let reaper = ProvisioningReaper(
        tenants: tenants, registration: registration, abandonedAfter: .seconds(config.abandonedRegistrationSeconds),
        interval: .seconds(60), logger: foundation.logger
    )
    let keyPruner = RegistrationRequestPruner(requests: registrationRequests, interval: .seconds(3_600), logger: foundation.logger)
    return foundation.makeApplication(routes: routes, migrations: TenancyMigrations.all, services: [reaper, keyPruner, verifier, sweep, relay])
}
