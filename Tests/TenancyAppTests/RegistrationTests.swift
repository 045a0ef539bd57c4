import Foundation
import HTTPTypes
import InternalAPI
import NIOHTTP1
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

@testable import TenancyApp

/// Registration across the real auth, billing and tenancy services, checked in all three databases.
@Suite("tenancy registration")
struct RegistrationTests {
    /// Rows left in each service's database.
    struct Footprint: Equatable {
        var tenants: Int
        var users: Int
        var subscriptions: Int
    }

    static func footprint(_ stack: TestStack) async throws -> Footprint {
        Footprint(
            tenants: try await TestPostgres.count(stack.databases[.tenancy]!, "SELECT count(*)::int FROM tenants"),
            users: try await TestPostgres.count(stack.databases[.auth]!, "SELECT count(*)::int FROM users"),
            subscriptions: try await TestPostgres.count(stack.databases[.billing]!, "SELECT count(*)::int FROM subscriptions")
        )
    }

    @Test func registrationCreatesEverything() async throws {
        try await TestStack.with(.auth, .billing, .tenancy) { stack in
            let email = Fixtures.uniqueEmail()
            let registered = try await Fixtures.register(at: stack.url(.tenancy), email: email, accountName: "Café Olé & Co.")
            #expect(registered.tenantSlug == "cafe-ole-co")
            #expect(registered.email == email)
            #expect(registered.accountName == "Café Olé & Co.")
            let trialDays = (registered.trialEndsAt ?? .distantPast).timeIntervalSinceNow / 86_400
            #expect(trialDays > 13.9 && trialDays <= 14)

            let tenantID = UUID(uuidString: registered.tenantId)!
            let active = try await TestPostgres.count(
                stack.databases[.tenancy]!,
                """
                SELECT count(*)::int FROM tenants t
                JOIN onboarding_progress o ON o.tenant_id = t.id AND o.step_account_created
                JOIN agent_configs a ON a.tenant_id = t.id
                WHERE t.id = \(tenantID) AND t.status = 'active' AND t.slug = 'cafe-ole-co'
                """
            )
            #expect(active == 1)
            let owner = try await TestPostgres.count(
                stack.databases[.auth]!, "SELECT count(*)::int FROM users WHERE email = \(email) AND tenant_id = \(tenantID) AND role = 'owner'"
            )
            #expect(owner == 1)
            let trial = try await TestPostgres.count(
                stack.databases[.billing]!, "SELECT count(*)::int FROM subscriptions WHERE tenant_id = \(tenantID) AND plan = 'trial' AND status = 'trialing'"
            )
            #expect(trial == 1)

            // The token works at auth straight away.
            let me = try await TestHTTP.send(.GET, stack.url(.auth) + "/api/auth/me", headers: Fixtures.bearer(registered.accessToken))
            #expect(me.status == 200)
        }
    }

    @Test func slugsAreDerivedAndKeptUnique() async throws {
        try await TestStack.with(.auth, .billing, .tenancy) { stack in
            let fromEmail = try await TestHTTP.send(
                .POST, stack.url(.tenancy) + "/api/onboarding/register",
                json: ["email": "Jane.Doe@Example.com", "password": Fixtures.password]
            )
            #expect(fromEmail.status == 201)
            let body = try fromEmail.json(Fixtures.Registered.self)
            #expect(body.tenantSlug == "jane-doe")
            #expect(body.email == "jane.doe@example.com")

            let first = try await Fixtures.register(at: stack.url(.tenancy), accountName: "Same Name")
            let second = try await Fixtures.register(at: stack.url(.tenancy), accountName: "Same Name")
            #expect(first.tenantSlug == "same-name")
            #expect(second.tenantSlug.hasPrefix("same-name-"))
            #expect(second.tenantSlug != first.tenantSlug)
        }
    }

    @Test func duplicateEmailIs409AndLeavesNothing() async throws {
        try await TestStack.with(.auth, .billing, .tenancy) { stack in
            let email = Fixtures.uniqueEmail()
            _ = try await Fixtures.register(at: stack.url(.tenancy), email: email)
            let again = try await TestHTTP.send(
                .POST, stack.url(.tenancy) + "/api/onboarding/register", json: ["email": email, "password": Fixtures.password]
            )
            #expect(again.status == 409)
            #expect(try again.error().code == "EMAIL_TAKEN")
            #expect(try await Self.footprint(stack) == Footprint(tenants: 1, users: 1, subscriptions: 1))
        }
    }

    @Test func badInputIsRefusedAndLeavesNothing() async throws {
        try await TestStack.with(.auth, .billing, .tenancy) { stack in
            let url = stack.url(.tenancy) + "/api/onboarding/register"
            let weak = try await TestHTTP.send(.POST, url, json: ["email": Fixtures.uniqueEmail(), "password": "short"])
            #expect(weak.status == 422)
            #expect(try weak.error().fields?["password"]?.contains("must be at least 8 characters") == true)

            let malformed = try await TestHTTP.send(.POST, url, body: #"{"email": "#)
            #expect(malformed.status == 400)
            let missing = try await TestHTTP.send(.POST, url, json: ["password": Fixtures.password])
            #expect(missing.status == 422)
            #expect(try missing.error().fields?["email"] == ["is required"])
            let badEmail = try await TestHTTP.send(.POST, url, json: ["email": "nope", "password": Fixtures.password])
            #expect(badEmail.status == 422)
            let longName = try await TestHTTP.send(
                .POST, url, json: ["email": Fixtures.uniqueEmail(), "password": Fixtures.password, "account_name": String(repeating: "a", count: 101)]
            )
            #expect(longName.status == 422)
            #expect(try longName.error().fields?["account_name"] != nil)
            let notObject = try await TestHTTP.send(.POST, url, body: "[1, 2]")
            #expect(notObject.status == 400)

            #expect(try await Self.footprint(stack) == Footprint(tenants: 0, users: 0, subscriptions: 0))
        }
    }

    @Test func billingDownMeans503AndNothingHalfMade() async throws {
        try await TestStack.with(.auth, .billing, .tenancy) { stack in
            await stack.stop(.billing)
            let response = try await TestHTTP.send(
                .POST, stack.url(.tenancy) + "/api/onboarding/register", json: ["email": Fixtures.uniqueEmail(), "password": Fixtures.password]
            )
            #expect(response.status == 503)
            #expect(try response.error().detail.contains("billing"))
            let tenants = try await TestPostgres.count(stack.databases[.tenancy]!, "SELECT count(*)::int FROM tenants")
            let users = try await TestPostgres.count(stack.databases[.auth]!, "SELECT count(*)::int FROM users")
            #expect(tenants == 0)
            #expect(users == 0)
        }
    }

    @Test func authDownMeans503AndNoTenant() async throws {
        try await TestStack.with(.auth, .billing, .tenancy) { stack in
            await stack.stop(.auth)
            let response = try await TestHTTP.send(
                .POST, stack.url(.tenancy) + "/api/onboarding/register", json: ["email": Fixtures.uniqueEmail(), "password": Fixtures.password]
            )
            #expect(response.status == 503)
            #expect(try await TestPostgres.count(stack.databases[.tenancy]!, "SELECT count(*)::int FROM tenants") == 0)
            #expect(try await TestPostgres.count(stack.databases[.billing]!, "SELECT count(*)::int FROM subscriptions") == 0)
        }
    }
}

@Suite("tenancy onboarding")
struct OnboardingTests {
    struct Status: Decodable {
        var tenantId: String
        var plan: String
        var subscriptionStatus: String
        var isTrialExpired: Bool
        var progress: [String: Bool]
        var completionPercentage: Int
        var nextStep: String?
    }

    @Test func statusShowsProgressAndTrial() async throws {
        try await TestStack.with(.auth, .billing, .tenancy) { stack in
            let registered = try await Fixtures.register(at: stack.url(.tenancy))
            let response = try await TestHTTP.send(.GET, stack.url(.tenancy) + "/api/onboarding/status", headers: Fixtures.bearer(registered.accessToken))
            #expect(response.status == 200)
            let status = try response.json(Status.self)
            #expect(status.tenantId == registered.tenantId)
            #expect(status.plan == "trial")
            #expect(status.subscriptionStatus == "trialing")
            #expect(status.isTrialExpired == false)
            #expect(status.progress["step_account_created"] == true)
            #expect(status.progress.count == 7)
            #expect(status.completionPercentage == 14)
            #expect(status.nextStep == "verify_email")

            #expect(try await TestHTTP.send(.GET, stack.url(.tenancy) + "/api/onboarding/status").status == 401)
            await stack.stop(.billing)
            // Without billing the checklist still answers (OnboardingProgressTests has the details).
            let degraded = try await TestHTTP.send(.GET, stack.url(.tenancy) + "/api/onboarding/status", headers: Fixtures.bearer(registered.accessToken))
            #expect(degraded.status == 200)
        }
    }

    @Test func internalLookupsFindOnlyFinishedTenants() async throws {
        try await TestStack.with(.auth, .billing, .tenancy) { stack in
            let registered = try await Fixtures.register(at: stack.url(.tenancy))
            let bySlug = try await stack.callInternal(.get, .tenancy, "/internal/tenants/by-slug/\(registered.tenantSlug)", as: .chat)
            #expect(bySlug.status == 200)
            let summary = try bySlug.json(TenantSummary.self)
            #expect(summary.id.uuidString.lowercased() == registered.tenantId)
            #expect(summary.greetingMessage.contains(registered.accountName))
            #expect(try await stack.callInternal(.get, .tenancy, "/internal/tenants/by-slug/nobody", as: .auth).status == 404)
            // billing has no business reading tenants.
            #expect(try await stack.callInternal(.get, .tenancy, "/internal/tenants/by-slug/\(registered.tenantSlug)", as: .billing).status == 401)
            #expect(try await TestHTTP.send(.GET, stack.url(.tenancy) + "/internal/tenants/by-slug/\(registered.tenantSlug)").status == 401)

            _ = try await TestPostgres.withClient(stack.databases[.tenancy]!) { client in
                try await client.query("INSERT INTO tenants (id, name, slug, status, rate_limit_per_minute) VALUES (\(UUID()), 'Half', 'half', 'provisioning', 60)")
            }
            #expect(try await stack.callInternal(.get, .tenancy, "/internal/tenants/by-slug/half", as: .chat).status == 404)
        }
    }

    @Test func onlyRefusalsAndUnreachedServicesSkipCompensation() {
        #expect(RegistrationService.hadNoEffect(InternalCallError.rejected(service: "auth", status: 409, body: nil)))
        #expect(RegistrationService.hadNoEffect(InternalCallError.notConnected(service: "auth", reason: "refused")))
        #expect(!RegistrationService.hadNoEffect(InternalCallError.rejected(service: "auth", status: 500, body: nil)))
        #expect(!RegistrationService.hadNoEffect(InternalCallError.unavailable(service: "auth", reason: "reset")))
        #expect(!RegistrationService.hadNoEffect(InternalCallError.timedOut(service: "auth")))
    }

    @Test func slugRules() {
        #expect(Slug.make(from: "Café Olé & Co.") == "cafe-ole-co")
        #expect(Slug.make(from: "  --Hello__World--  ") == "hello-world")
        #expect(Slug.make(from: "日本") == "account")
        #expect(Slug.make(from: String(repeating: "ab", count: 100)).count <= Slug.maxLength)
        #expect(Slug.isValid("acme-shop"))
        #expect(!Slug.isValid("../etc"))
        #expect(!Slug.isValid("Acme"))
    }
}
