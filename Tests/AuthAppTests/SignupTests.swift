import Foundation
import InternalAPI
import NIOHTTP1
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

@testable import AuthApp

/// Sign-up into an existing tenant (only where tenancy's `allow_signup` is on), suspended tenants'
/// sign-in, and the first super_admin from configuration.
@Suite("auth signup", .timeLimit(.minutes(3)))
struct SignupTests {
    static func signup(_ stack: TestStack, _ body: [String: String]) async throws -> TestResponse {
        try await TestHTTP.send(.POST, stack.url(.auth) + "/api/auth/signup", json: body)
    }

    static func setTenant(_ stack: TestStack, _ tenantID: String, _ assignment: String) async throws {
        let id = UUID(uuidString: tenantID)!
        _ = try await TestPostgres.count(
            stack.databases[.tenancy]!,
            PostgresQuery(unsafeSQL: "WITH u AS (UPDATE tenants SET \(assignment) WHERE id = $1 RETURNING 1) SELECT count(*)::int FROM u", binds: {
                var binds = PostgresBindings()
                binds.append(id)
                return binds
            }())
        )
    }

    @Test func signupJoinsOnlyTenantsThatAllowIt() async throws {
        try await TestStack.with(.auth, .billing, .tenancy) { stack in
            let open = try await Fixtures.register(at: stack.url(.tenancy))
            let closed = try await Fixtures.register(at: stack.url(.tenancy))
            try await Self.setTenant(stack, open.tenantId, "allow_signup = true")
            let email = Fixtures.uniqueEmail("member")

            let refused = try await Self.signup(stack, ["email": email, "password": Fixtures.password, "tenant_slug": closed.tenantSlug])
            #expect(refused.status == 403)
            #expect(try refused.error().code == "SIGNUP_DISABLED")
            let unknown = try await Self.signup(stack, ["email": email, "password": Fixtures.password, "tenant_slug": "no-such-tenant"])
            #expect(unknown.status == 404)
            #expect(try await TestPostgres.count(stack.databases[.auth]!, "SELECT count(*)::int FROM users WHERE email = \(email)") == 0)

            let joined = try await Self.signup(
                stack, ["email": " \(email.uppercased()) ", "password": Fixtures.password, "tenant_slug": open.tenantSlug, "full_name": "Mia Member"]
            )
            #expect(joined.status == 201)
            struct Joined: Decodable { var role: String; var tenantId: String; var refreshToken: String; var accessToken: String }
            let body = try joined.json(Joined.self)
            #expect(body.role == "user" && body.tenantId == open.tenantId && body.refreshToken.hasPrefix("rt_"))
            #expect(
                try await TestPostgres.count(
                    stack.databases[.auth]!,
                    "SELECT count(*)::int FROM users WHERE email = \(email) AND role = 'user' AND email_verified_at IS NULL AND full_name = 'Mia Member'"
                ) == 1
            )
            #expect(try await TestPostgres.count(stack.databases[.auth]!, "SELECT count(*)::int FROM mail_outbox WHERE recipient = \(email)") == 1)
            #expect(try await TestHTTP.send(.GET, stack.url(.auth) + "/api/auth/me", headers: Fixtures.bearer(body.accessToken)).status == 200)

            let twice = try await Self.signup(stack, ["email": email, "password": Fixtures.password, "tenant_slug": open.tenantSlug])
            #expect(twice.status == 409)
            let bad = try await Self.signup(stack, ["email": "nope", "password": "weak", "tenant_slug": ""])
            #expect(bad.status == 422)
            #expect(try Set(bad.error().fields?.keys.map { $0 } ?? []) == ["email", "password", "tenant_slug"])
            #expect(try await TestHTTP.send(.POST, stack.url(.auth) + "/api/auth/signup", body: "[]").status == 400)

            // Tenancy down: a slug not cached cannot be checked, so nothing is created.
            await stack.stop(.tenancy)
            let later = Fixtures.uniqueEmail("later")
            let down = try await Self.signup(stack, ["email": later, "password": Fixtures.password, "tenant_slug": closed.tenantSlug + "-x"])
            #expect(down.status == 503)
            #expect(try await TestPostgres.count(stack.databases[.auth]!, "SELECT count(*)::int FROM users WHERE email = \(later)") == 0)
        }
    }

    @Test func suspendedTenantsCannotSignIn() async throws {
        try await TestStack.with(.auth, .billing, .tenancy) { stack in
            let registered = try await Fixtures.register(at: stack.url(.tenancy))
            try await Self.setTenant(stack, registered.tenantId, "status = 'suspended', allow_signup = true")
            let login = try await TestHTTP.send(
                .POST, stack.url(.auth) + "/api/auth/login", json: ["email": registered.email, "password": Fixtures.password]
            )
            #expect(login.status == 403)
            #expect(try login.error().code == "TENANT_SUSPENDED")
            let signup = try await Self.signup(stack, ["email": Fixtures.uniqueEmail(), "password": Fixtures.password, "tenant_slug": registered.tenantSlug])
            #expect(signup.status == 403)
            #expect(try signup.error().code == "TENANT_SUSPENDED")
        }
    }

    @Test func theFirstSuperAdminComesFromConfigurationOnce() async throws {
        let email = Fixtures.uniqueEmail("root")
        let password = "R00t-of-all"
        try await TestStack.with(.auth, overrides: ["SUPER_ADMIN_EMAIL": email.uppercased(), "SUPER_ADMIN_PASSWORD": password]) { stack in
            let login = try await TestHTTP.send(.POST, stack.url(.auth) + "/api/auth/login", json: ["email": email, "password": password])
            #expect(login.status == 200)
            #expect(login.text.contains(#""role":"super_admin""#))
            // A restart finds it and makes no second one.
            await stack.stop(.auth)
            try await stack.start(.auth)
            #expect(try await TestPostgres.count(stack.databases[.auth]!, "SELECT count(*)::int FROM users WHERE role = 'super_admin'") == 1)
            // A super_admin sees every tenant's users.
            let owner = Fixtures.uniqueEmail()
            #expect(try await Fixtures.createOwner(authURL: stack.url(.auth), email: owner).status == 201)
            struct Login: Decodable { var accessToken: String }
            let token = try await TestHTTP.send(.POST, stack.url(.auth) + "/api/auth/login", json: ["email": email, "password": password])
                .json(Login.self).accessToken
            let users = try await TestHTTP.send(.GET, stack.url(.auth) + "/api/auth/users", headers: Fixtures.bearer(token))
            #expect(users.status == 200)
            #expect(users.text.contains(owner))
        }
        // Both or neither, and a weak password stops the start.
        #expect(throws: ConfigurationError.self) { try AuthConfig(settings: Self.settings(["SUPER_ADMIN_EMAIL": email])) }
        #expect(throws: ConfigurationError.self) {
            try AuthConfig(settings: Self.settings(["SUPER_ADMIN_EMAIL": email, "SUPER_ADMIN_PASSWORD": "password1"]))
        }
    }

    static func settings(_ extra: [String: String]) -> Settings {
        Settings.variables(
            ["DATABASE_URL": "postgres://u@127.0.0.1:5432/db", "TENANCY_URL": "http://127.0.0.1:1", "SERVICE_KEY": TestStack.serviceKeys[.auth]!.privateKeyPEM]
                .merging(extra) { $1 }
        )
    }
}
