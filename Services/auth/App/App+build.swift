import Hummingbird
import InternalAPI
import ServiceCore
import ServiceLifecycle

/// Builds the auth service: users, credentials, signing keys and the JWKS.
package func buildAuthApplication(config: AuthConfig) async throws -> some ApplicationProtocol {
    let foundation = try await ServiceFoundation(name: "auth", config: config.common)
    let users = PostgresUserRepository(client: foundation.database)
    // Password hashes: in a worker process of their own (PASSWORD_HASH_ISOLATION), or on threads.
    let hashing = await PasswordHashIsolation.makeRunner(config: config, logger: foundation.logger)
    let hasher = PasswordHasher(cost: config.bcryptCost, runner: hashing.runner)
    let signingKeys = PostgresSigningKeyRepository(client: foundation.database)
    let issuer = TokenIssuer(
        lifetimeSeconds: config.accessTokenLifetimeSeconds,
        source: config.signingKeyPEM.map { .configured(privateKeyPEM: $0, additionalPublicKeyPEMs: config.additionalPublicKeyPEMs) }
            ?? .database(signingKeys),
        activationDelay: .seconds(config.signingKeyActivationDelaySeconds)
    )
    // auth verifies its own tokens from its own keys, through the same verifier every service uses;
    // an unknown `kid` (another replica's new key) reads the table again first.
    let verifier = AccessTokenVerifier(source: issuer.reloadingSource(logger: foundation.logger), minimumRefreshInterval: .seconds(1), logger: foundation.logger)

    let sessions = PostgresSessionRepository(
        client: foundation.database, refreshLifetime: .seconds(config.refreshTokenLifetimeSeconds),
        reuseInterval: .seconds(config.refreshReuseIntervalSeconds), accessLifetime: .seconds(config.accessTokenLifetimeSeconds)
    )

    // auth's events and who receives them.
    let outbox = Outbox(routes: [EmailVerified.type: [foundation.client(for: "tenancy", baseURL: config.tenancyURL)]])
    let appBaseURL = config.appBaseURL.hasSuffix("/") ? String(config.appBaseURL.dropLast()) : config.appBaseURL
    let emails = AccountEmails(
        client: foundation.database, outbox: outbox, appBaseURL: appBaseURL,
        verificationLifetime: .seconds(86_400), resetLifetime: .seconds(3_600), resendInterval: .seconds(60),
        accessLifetime: .seconds(config.accessTokenLifetimeSeconds)
    )

    let routes = foundation.makeRouter()
    EmailController(emails: emails, users: users, hasher: hasher, answerFloor: .milliseconds(250)).addRoutes(to: routes.group("api/auth"))
    let attempts = PostgresLoginAttempts(
        client: foundation.database, maxFailures: config.maxLoginAttempts, lockout: .seconds(config.lockoutMinutes * 60)
    )
    let tenancy = foundation.client(for: "tenancy", baseURL: config.tenancyURL)
    let directory = TenantDirectory(tenancy: tenancy, ttl: .seconds(10))
    let auth = AuthController(
        users: users, sessions: sessions, attempts: attempts, directory: directory, hasher: hasher, issuer: issuer, verifier: verifier
    )
    SignupController(auth: auth, emails: emails, directory: directory).addRoutes(to: routes.group("api/auth"))
    auth.addRoutes(to: routes.group("api/auth"))
    SessionController(auth: auth, sessions: sessions).addRoutes(to: routes.group("api/auth"))
    UsersController(
        auth: auth, administration: PostgresUserAdministration(client: foundation.database, accessLifetime: .seconds(config.accessTokenLifetimeSeconds))
    ).addRoutes(to: routes.group("api/auth"))
    SigningKeysController(auth: auth).addRoutes(to: routes.group("api/auth"))
    let invitations = PostgresInvitations(client: foundation.database, appBaseURL: appBaseURL, lifetime: .seconds(7 * 86_400))
    InvitationsController(auth: auth, invitations: invitations).addRoutes(to: routes.group("api/auth"))
    // A token minted for an API key lives at most five minutes: the gateway asks again that often.
    let apiKeyTokenLifetime = Duration.seconds(min(300, config.accessTokenLifetimeSeconds))
    let apiKeys = PostgresAPIKeyRepository(client: foundation.database, tokenLifetime: apiKeyTokenLifetime)
    APIKeysController(verifier: verifier, keys: apiKeys, perTenantLimit: config.apiKeysPerTenant).addRoutes(to: routes.group("api/auth"))
    JWKSController(issuer: issuer).addRoutes(to: routes)
    // Owners are made and removed by tenancy's registration alone.
    InternalUsersController(
        users: users, issuer: issuer, auth: auth, emails: emails, registrations: OwnerRegistrations(client: foundation.database)
    )
        .addRoutes(to: foundation.internalGroup(routes, accepting: ["tenancy"]))
    // Tenants a super_admin creates get their owner invited; tenancy's tenant events keep the directory true.
    InternalInvitationsController(invitations: invitations).addRoutes(to: foundation.internalGroup(routes, accepting: ["tenancy"]))
    // tenancy's tenant events, and billing's trial events (the owners' trial mails).
    EventReceiver(
        database: foundation.database,
        handlers: TenantEventHandlers.all(directory: directory).merging(TrialMails.handlers(appBaseURL: appBaseURL)) { first, _ in first },
        senders: Dictionary(uniqueKeysWithValues: TenantChanged.types.map { ($0, "tenancy") }).merging(TrialMails.senders) { first, _ in first }
    )
    .addRoutes(to: foundation.internalGroup(routes, accepting: ["tenancy", "billing"]))
    // The gateway's alone: its revocation feed and the API-key exchange.
    let gatewayOnly = foundation.internalGroup(routes, "gateway", accepting: ["gateway"])
    GatewayRevocationsController(sessions: sessions).addRoutes(to: gatewayOnly)
    GatewayAPIKeysController(keys: apiKeys, issuer: issuer, tokenLifetime: apiKeyTokenLifetime).addRoutes(to: gatewayOnly)

    let pruner = SessionPruner(sessions: sessions, interval: .seconds(3_600), logger: foundation.logger)
    let relay = OutboxRelay(outbox: outbox, database: foundation.database, metrics: foundation.metrics, logger: foundation.logger)
    let mailSender = MailSender(
        database: foundation.database, transport: config.mail.makeTransport(), metrics: foundation.metrics, logger: foundation.logger
    )
    // The hashing worker first: services stop in reverse order, so it outlives every other user.
    var services: [any Service] = hashing.services + [pruner, relay, mailSender]
    if config.signingKeyPEM == nil {
        services.append(SigningKeyMaintenance(issuer: issuer, repository: signingKeys, logger: foundation.logger))
    }
    var app = foundation.makeApplication(routes: routes, migrations: AuthMigrations.all, services: services)
    let logger = foundation.logger
    let superAdmin = config.superAdmin
    app.beforeServerStarts {
        try await issuer.load(logger: logger)
        if let superAdmin {
            try await SuperAdminBootstrap(users: users, hasher: hasher).ensure(email: superAdmin.email, password: superAdmin.password, logger: logger)
        }
    }
    return app
}
