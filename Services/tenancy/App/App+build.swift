import Hummingbird
import InternalAPI
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

    let routes = foundation.makeRouter()
    OnboardingController(registration: registration, tenants: tenants, billing: billing, verifier: verifier)
        .addRoutes(to: routes.group("api/onboarding"))
    // Tenant facts: auth (sign-up, suspension at login) and chat (widget sessions).
    InternalTenantsController(tenants: tenants).addRoutes(to: foundation.internalGroup(routes, accepting: ["auth", "chat"]))
    // Events from other services' outboxes, each applied once.
    EventReceiver(
        database: foundation.database,
        handlers: [
            EmailVerified.type: { event, connection, logger in
                let verified = try event.decodePayload(as: EmailVerified.self)
                try await connection.query(
                    "UPDATE onboarding_progress SET step_email_verified = true WHERE tenant_id = \(verified.tenantId)", logger: logger
                )
            }
        ]
    ).addRoutes(to: foundation.internalGroup(routes, accepting: ["auth"]))
    // Platform administration (super_admins; a tenant's own admins for its one tenant).
    let admin = routes.group("api/admin").add(middleware: JWTAuthMiddleware(verifier: verifier))
    let adminTenants = PostgresAdminTenantRepository(client: foundation.database, outbox: outbox)
    AdminTenantsController(tenants: adminTenants, creation: TenantCreation(tenants: adminTenants, registration: registration))
        .addRoutes(to: admin)
    PlatformStatsController(tenants: adminTenants, chat: chat).addRoutes(to: admin)
    GatewayPoliciesController(tenants: tenants).addRoutes(to: foundation.internalGroup(routes, "gateway", accepting: ["gateway"]))
    let reaper = ProvisioningReaper(
        tenants: tenants, registration: registration, abandonedAfter: .seconds(config.abandonedRegistrationSeconds),
        interval: .seconds(60), logger: foundation.logger
    )
    return foundation.makeApplication(routes: routes, migrations: TenancyMigrations.all, services: [reaper, verifier, relay])
}
