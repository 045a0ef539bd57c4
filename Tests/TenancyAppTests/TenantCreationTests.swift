import Foundation
import InternalAPI
import NIOHTTP1
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

@testable import TenancyApp

/// `POST /api/admin/tenants` across tenancy, auth (owner invitation, mailed) and billing (trial),
/// checked in all three databases; its bad input and its compensation when a later step fails.
@Suite("tenancy tenant creation", .timeLimit(.minutes(3)))
struct TenantCreationTests {
    typealias H = AdminHarness
    typealias Created = AdminTenantsController.CreatedTenant

    static let superAdminEmail = "root@platform.example.com"
    static let overrides = ["SUPER_ADMIN_EMAIL": superAdminEmail, "SUPER_ADMIN_PASSWORD": Fixtures.password]

    /// The bootstrapped super_admin, signed in (a real account: the invitation names its inviter).
    static func superAdmin(_ stack: TestStack) async throws -> String {
        let answer = try await TestHTTP.send(
            .POST, stack.url(.auth) + "/api/auth/login", json: ["email": superAdminEmail, "password": Fixtures.password]
        )
        #expect(answer.status == 200, "\(answer.text)")
        struct Login: Decodable { var accessToken: String }
        return try answer.json(Login.self).accessToken
    }

    /// Rows of the new tenant's in each database: tenants, auth's directory, invitations, subscriptions.
    static func footprint(_ stack: TestStack, slug: String) async throws -> [Int] {
        [
            try await H.count(stack, "SELECT count(*)::int FROM tenants WHERE slug = \(slug)", in: .tenancy),
            try await H.count(stack, "SELECT count(*)::int FROM tenant_directory WHERE slug = \(slug)", in: .auth),
            try await H.count(stack, "SELECT count(*)::int FROM invitations", in: .auth),
            try await H.count(stack, "SELECT count(*)::int FROM subscriptions", in: .billing),
        ]
    }

    @Test func aSuperAdminCreatesATenantWithItsOwnerInvitationAndTrial() async throws {
        try await TestStack.with(.auth, .billing, .tenancy, overrides: Self.overrides) { stack in
            let admin = try await Self.superAdmin(stack)
            let email = Fixtures.uniqueEmail("nova")
            let answer = try await H.send(
                stack, .POST, "/api/admin/tenants", token: admin,
                json: CreateBody(
                    name: " Nova Shop ", slug: "nova-shop", ownerEmail: email.uppercased(), ownerFullName: "Nova Owner",
                    allowedOrigins: ["https://nova.example"], rateLimitPerMinute: 120, monthlyMessageQuota: 5_000
                )
            )
            #expect(answer.status == 201, "\(answer.text)")
            let created = try answer.json(Created.self)
            #expect(created.tenant.name == "Nova Shop" && created.tenant.slug == "nova-shop" && created.tenant.status == "active")
            #expect(created.tenant.allowedOrigins == ["https://nova.example"] && created.tenant.rateLimitPerMinute == 120)
            #expect(created.tenant.monthlyMessageQuota == 5_000)
            #expect(created.ownerInvitation.email == email)
            #expect(created.subscription.plan == "trial" && created.subscription.status == "trialing" && created.subscription.trialEndsAt != nil)
            let id = try #require(UUID(uuidString: created.tenant.id))

            // tenancy: the tenant, its onboarding (nothing done yet: the owner is only invited) and its agent.
            #expect(try await H.count(stack, """
                SELECT count(*)::int FROM tenants t JOIN onboarding_progress o ON o.tenant_id = t.id AND NOT o.step_account_created
                JOIN agent_configs a ON a.tenant_id = t.id WHERE t.id = \(id) AND t.status = 'active'
                """, in: .tenancy) == 1)
            // auth: the directory entry, the owner's pending invitation and its mail.
            #expect(try await H.count(stack, "SELECT count(*)::int FROM tenant_directory WHERE tenant_id = \(id) AND name = 'Nova Shop' AND slug = 'nova-shop'", in: .auth) == 1)
            #expect(try await H.count(stack, """
                SELECT count(*)::int FROM invitations WHERE tenant_id = \(id) AND email = \(email) AND role = 'owner'
                AND accepted_at IS NULL AND id = \(UUID(uuidString: created.ownerInvitation.invitationId)!)
                """, in: .auth) == 1)
            #expect(try await H.count(stack, "SELECT count(*)::int FROM mail_outbox WHERE recipient = \(email)", in: .auth) == 1)
            // billing: the trial.
            #expect(try await H.count(stack, "SELECT count(*)::int FROM subscriptions WHERE tenant_id = \(id) AND status = 'trialing'", in: .billing) == 1)

            // The mailed link makes the owner, who then manages the tenant.
            let body = try await TestPostgres.withClient(stack.databases[.auth]!) { client in
                try await client.query("SELECT text_body FROM mail_outbox WHERE recipient = \(email)").collect().map { try $0.decode(String.self) }
            }
            let link = try #require(body.first?.range(of: "accept-invitation?token="))
            let token = String(body[0][link.upperBound...].prefix { !$0.isWhitespace })
            let accepted = try await TestHTTP.send(
                .POST, stack.url(.auth) + "/api/auth/accept-invitation", json: ["token": token, "password": Fixtures.password, "full_name": "Nova Owner"]
            )
            #expect(accepted.status == 201, "\(accepted.text)")
            struct Login: Decodable { var accessToken: String; var role: String; var tenantId: String }
            let owner = try accepted.json(Login.self)
            #expect(owner.role == "owner" && owner.tenantId == created.tenant.id)
            #expect(try await H.send(stack, .GET, "/api/admin/tenants/\(id)", token: owner.accessToken).status == 200)

            // The slug is taken now: 409, and nothing new anywhere.
            let before = try await Self.footprint(stack, slug: "nova-shop")
            let again = try await H.send(
                stack, .POST, "/api/admin/tenants", token: admin, json: CreateBody(name: "Nova Again", slug: "nova-shop", ownerEmail: "b@example.com")
            )
            H.expectError(again, 409, "SLUG_TAKEN")
            #expect(try await Self.footprint(stack, slug: "nova-shop") == before)
        }
    }

    @Test func creationRefusesBadInputAndMakesNothing() async throws {
        try await TestStack.with(.auth, .tenancy, overrides: Self.overrides) { stack in
            let admin = try await Self.superAdmin(stack)
            try await H.seed(stack, name: "Taken", slug: "taken")
            let tenantsBefore = try await H.count(stack, "SELECT count(*)::int FROM tenants", in: .tenancy)
            let directoryBefore = try await H.count(stack, "SELECT count(*)::int FROM tenant_directory", in: .auth)
            let cases: [(CreateBody, String)] = [
                (CreateBody(name: "Admin Co", slug: "admin", ownerEmail: "a@example.com"), "slug"),
                (CreateBody(name: "Www Co", slug: "www", ownerEmail: "a@example.com"), "slug"),
                (CreateBody(name: "Api", ownerEmail: "a@example.com"), "slug"),
                (CreateBody(name: "Bad", slug: "Bad Slug", ownerEmail: "a@example.com"), "slug"),
                (CreateBody(name: "Bad", slug: "-bad", ownerEmail: "a@example.com"), "slug"),
                (CreateBody(name: "Bad", slug: "bad--slug", ownerEmail: "a@example.com"), "slug"),
                (CreateBody(name: "Bad", slug: "../etc", ownerEmail: "a@example.com"), "slug"),
                (CreateBody(name: "Bad", slug: "café", ownerEmail: "a@example.com"), "slug"),
                (CreateBody(name: "Bad", slug: "", ownerEmail: "a@example.com"), "slug"),
                (CreateBody(name: "Bad", slug: String(repeating: "a", count: 49), ownerEmail: "a@example.com"), "slug"),
                (CreateBody(name: "", slug: "fine", ownerEmail: "a@example.com"), "name"),
                (CreateBody(name: String(repeating: "n", count: 101), slug: "fine", ownerEmail: "a@example.com"), "name"),
                (CreateBody(name: "Fine", slug: "fine", ownerEmail: "not-an-email"), "owner_email"),
                (CreateBody(name: "Fine", slug: "fine", ownerEmail: ""), "owner_email"),
                (CreateBody(name: "Fine", slug: "fine", ownerEmail: "a@example.com", ownerFullName: String(repeating: "f", count: 201)), "owner_full_name"),
                (CreateBody(name: "Fine", slug: "fine", ownerEmail: "a@example.com", allowedOrigins: ["javascript:alert(1)"]), "allowed_origins"),
                (CreateBody(name: "Fine", slug: "fine", ownerEmail: "a@example.com", rateLimitPerMinute: 0), "rate_limit_per_minute"),
                (CreateBody(name: "Fine", slug: "fine", ownerEmail: "a@example.com", monthlyMessageQuota: -5), "monthly_message_quota"),
            ]
            for (body, field) in cases {
                H.expectError(try await H.send(stack, .POST, "/api/admin/tenants", token: admin, json: body), 422, "VALIDATION_ERROR", fields: [field])
            }
            #expect(try await H.send(stack, .POST, "/api/admin/tenants", token: admin, raw: #"{"name": "No owner"}"#).status == 422)
            #expect(try await H.send(stack, .POST, "/api/admin/tenants", token: admin, raw: #"{"name": 1, "owner_email": "a@example.com"}"#).status == 422)
            // A slug that is taken is 409 before any other service is asked.
            H.expectError(
                try await H.send(stack, .POST, "/api/admin/tenants", token: admin, json: CreateBody(name: "Taken Too", slug: "taken", ownerEmail: "t@example.com")),
                409, "SLUG_TAKEN"
            )
            #expect(try await H.count(stack, "SELECT count(*)::int FROM tenants", in: .tenancy) == tenantsBefore)
            #expect(try await H.count(stack, "SELECT count(*)::int FROM tenant_directory", in: .auth) == directoryBefore)
            #expect(try await H.count(stack, "SELECT count(*)::int FROM invitations", in: .auth) == 0)
        }
    }

    @Test func aFailedStepUndoesTheEarlierOnes() async throws {
        try await TestStack.with(.auth, .billing, .tenancy, overrides: Self.overrides) { stack in
            let admin = try await Self.superAdmin(stack)
            // The owner's email has an account already: auth refuses (409), the trial and the tenant go.
            let member = Fixtures.uniqueEmail("member")
            #expect(try await Fixtures.createOwner(authURL: stack.url(.auth), email: member).status == 201)
            let taken = try await H.send(
                stack, .POST, "/api/admin/tenants", token: admin, json: CreateBody(name: "Dup Owner", slug: "dup-owner", ownerEmail: member)
            )
            H.expectError(taken, 409, "EMAIL_TAKEN")
            #expect(try await Self.footprint(stack, slug: "dup-owner") == [0, 0, 0, 0])
            #expect(try await H.count(stack, "SELECT count(*)::int FROM mail_outbox WHERE subject LIKE 'You are invited%'", in: .auth) == 0)

            // billing away: 503, nothing left in tenancy or auth.
            await stack.stop(.billing)
            let down = try await H.send(
                stack, .POST, "/api/admin/tenants", token: admin, json: CreateBody(name: "No Billing", slug: "no-billing", ownerEmail: "nb@example.com")
            )
            H.expectError(down, 503, "UPSTREAM_UNAVAILABLE")
            #expect(try await H.count(stack, "SELECT count(*)::int FROM tenants WHERE slug = 'no-billing'", in: .tenancy) == 0)
            #expect(try await H.count(stack, "SELECT count(*)::int FROM tenant_directory WHERE slug = 'no-billing'", in: .auth) == 0)
            #expect(try await H.count(stack, "SELECT count(*)::int FROM invitations", in: .auth) == 0)
        }
    }

    struct CreateBody: Encodable {
        var name: String
        var slug: String?
        var ownerEmail: String
        var ownerFullName: String?
        var allowedOrigins: [String]?
        var rateLimitPerMinute: Int?
        var monthlyMessageQuota: Int?
    }
}
