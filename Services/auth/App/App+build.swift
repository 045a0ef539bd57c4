import Hummingbird
import ServiceCore

/// Builds the auth service: users, credentials, signing keys and the JWKS.
package func buildAuthApplication(config: AuthConfig) async throws -> some ApplicationProtocol {
    let foundation = await ServiceFoundation(name: "auth", config: config.common)
    let users = PostgresUserRepository(client: foundation.database)
    let hasher = PasswordHasher(cost: config.bcryptCost)
    let issuer = TokenIssuer(lifetimeSeconds: config.accessTokenLifetimeSeconds)
    // auth verifies its own tokens from its own key, through the same verifier every service uses.
    let verifier = AccessTokenVerifier(source: issuer, minimumRefreshInterval: .seconds(1), logger: foundation.logger)

    let routes = foundation.makeRouter()
    let auth = AuthController(users: users, hasher: hasher, issuer: issuer, verifier: verifier)
    auth.addRoutes(to: routes.group("api/auth"))
    JWKSController(issuer: issuer).addRoutes(to: routes)
    InternalUsersController(users: users, hasher: hasher, issuer: issuer, auth: auth)
        .addRoutes(to: foundation.internalGroup(routes))

    var app = foundation.makeApplication(routes: routes, migrations: AuthMigrations.all)
    let postgres = foundation.postgres
    let logger = foundation.logger
    let configuredKey = config.signingKeyPEM
    app.beforeServerStarts {
        try await issuer.load(configuredPEM: configuredKey, postgres: postgres, logger: logger)
    }
    return app
}
