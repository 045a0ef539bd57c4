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
    GatewayPoliciesController(tenants: tenants).addRoutes(to: foundation.internalGroup(routes, "gateway", accepting: ["gateway"]))
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
    return foundation.makeApplication(routes: routes, migrations: TenancyMigrations.all, services: [reaper, verifier])
}
