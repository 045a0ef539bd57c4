import Foundation
import InternalAPI
import NIOHTTP1
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

@testable import AuthApp

/// Invitations: made by a tenant's admins within the role rules, mailed through the mail outbox,
/// accepted once with the mailed token (which makes a verified account and signs it in), listed
/// and revoked inside the caller's tenant; and every bad input refused with nothing changed.
@Suite("auth invitations", .timeLimit(.minutes(3)))
struct InvitationTests {
    typealias Member = UserManagementTests.Member

    // The service's own wire types: the fuzzer holds them to docs/openapi.yaml.
    typealias Invitation = InvitationsController.InvitationView
    typealias InvitationList = InvitationsController.InvitationList
    typealias Accepted = AuthController.LoginResponse

    static func invite(_ stack: TestStack, as member: Member, _ body: [String: String]) async throws -> TestResponse {
        try await UserManagementTests.send(stack, .POST, "/api/auth/invite", as: member, json: body)
    }

    static func accept(_ stack: TestStack, _ body: [String: String]) async throws -> TestResponse {
        try await TestHTTP.send(.POST, stack.url(.auth) + "/api/auth/accept-invitation", json: body)
    }

    static func token(_ stack: TestStack, to email: String) async throws -> String {
        try #require(try await EmailFlowTests.mailedToken(stack, to: email, page: "accept-invitation"))
    }

    static func count(_ stack: TestStack, _ query: PostgresQuery) async throws -> Int {
        try await TestPostgres.count(stack.databases[.auth]!, query)
    }

    static func invitationRows(_ stack: TestStack) async throws -> Int {
        try await count(stack, "SELECT count(*)::int FROM invitations")
    }

    static func userRows(_ stack: TestStack, email: String) async throws -> Int {
        try await count(stack, "SELECT count(*)::int FROM users WHERE lower(email) = \(email)")
    }

    static let password = "Inv1ted-Passw0rd"

    /// A tenant with an owner, an admin and a user; and another tenant.
    static func cast(_ stack: TestStack) async throws -> (UserManagementTests.Tenant, admin: Member, user: Member, other: UserManagementTests.Tenant) {
        let tenant = try await UserManagementTests.tenant(stack)
        let admin = try await UserManagementTests.add(stack, to: tenant, role: .admin)
        let user = try await UserManagementTests.add(stack, to: tenant, role: .user)
        return (tenant, admin, user, try await UserManagementTests.tenant(stack))
    }

    @Test func anAdminInvitesAndTheInviteeJoinsOnceWithAVerifiedAccount() async throws {
        try await TestStack.with(.auth, overrides: ["APP_BASE_URL": "https://app.example.com/"]) { stack in
            let tenant = try await UserManagementTests.tenant(stack)
            let admin = try await UserManagementTests.add(stack, to: tenant, role: .admin)
            let email = Fixtures.uniqueEmail("invitee")

            let invited = try await Self.invite(stack, as: admin, ["email": "  \(email.uppercased()) ", "role": "user", "full_name": " Ivy Invitee "])
            #expect(invited.status == 201, "\(invited.text)")
            let invitation = try invited.json(Invitation.self)
            #expect(invitation.email == email && invitation.role == "user" && invitation.status == "pending" && invitation.inviteSent == true)
            #expect(invitation.tenantId == tenant.id.uuidString.lowercased() && invitation.invitedBy == admin.id && invitation.fullName == "Ivy Invitee")
            #expect(invitation.userId == nil && invitation.acceptedAt == nil)
            let days = invitation.expiresAt.timeIntervalSinceNow / 86_400
            #expect(days > 6.99 && days <= 7.0)

            // The token is in the mail only (its link built from APP_BASE_URL), and stored as a hash.
            let token = try await Self.token(stack, to: email)
            #expect(!invited.text.contains(token))
            let mail = try await TestPostgres.withClient(stack.databases[.auth]!) { client in
                try await client.query("SELECT subject, text_body FROM mail_outbox WHERE recipient = \(email)").collect()
            }
            #expect(mail.count == 1)
            let (subject, body) = try mail[0].decode((String, String).self)
            #expect(subject == "You are invited to join Acme")
            #expect(body.contains("https://app.example.com/accept-invitation?token=\(token)") && body.contains("Ivy Invitee"))
            #expect(try await Self.count(stack, "SELECT count(*)::int FROM invitations WHERE token_hash = sha256(\(Data(token.utf8)))") == 1)
            #expect(try await Self.count(stack, "SELECT count(*)::int FROM invitations WHERE token_hash = \(Data(token.utf8))") == 0)

            let accepted = try await Self.accept(stack, ["token": token, "password": Self.password, "full_name": "  Ivy Member "])
            #expect(accepted.status == 201, "\(accepted.text)")
            let account = try accepted.json(Accepted.self)
            #expect(account.email == email && account.role == "user" && account.tenantId == tenant.id.uuidString.lowercased())
            #expect(account.refreshToken.hasPrefix("rt_"))
            let userID = UUID(uuidString: account.userId)!
            #expect(
                try await Self.count(
                    stack,
                    """
                    SELECT count(*)::int FROM users WHERE id = \(userID) AND tenant_id = \(tenant.id) AND email = \(email) AND role = 'user'
                    AND full_name = 'Ivy Member' AND email_verified_at IS NOT NULL AND deleted_at IS NULL
                    """
                ) == 1
            )
            #expect(
                try await Self.count(
                    stack, "SELECT count(*)::int FROM invitations WHERE accepted_at IS NOT NULL AND accepted_user_id = \(userID) AND revoked_at IS NULL"
                ) == 1
            )
            // No verification mail: the invitation proved the mailbox.
            #expect(try await EmailFlowTests.mails(stack, to: email) == 1)
            let me = try await TestHTTP.send(.GET, stack.url(.auth) + "/api/auth/me", headers: Fixtures.bearer(account.accessToken))
            #expect(me.status == 200)
            #expect(me.text.contains(#""email_verified":true"#))
            // The session refreshes, and the password signs in.
            #expect(try await TestHTTP.send(.POST, stack.url(.auth) + "/api/auth/refresh", json: ["refresh_token": account.refreshToken]).status == 200)
            _ = try await UserManagementTests.login(stack, email, Self.password)

            // Single use.
            let again = try await Self.accept(stack, ["token": token, "password": "An0ther-Passw0rd", "full_name": "Eve"])
            #expect(again.status == 401)
            #expect(try again.error().code == "INVITATION_ERROR")
            #expect(again.header("WWW-Authenticate") == nil)
            #expect(try await Self.userRows(stack, email: email) == 1)

            let listed = try await UserManagementTests.send(stack, .GET, "/api/auth/invitations", as: admin).json(InvitationList.self)
            #expect(listed.total == 1 && listed.invitations.first?.status == "accepted" && listed.invitations.first?.userId == account.userId)
            #expect(listed.invitations.first?.inviteSent == nil)
            // Now a member: inviting them again is a conflict.
            let member = try await Self.invite(stack, as: admin, ["email": email, "role": "user"])
            #expect(member.status == 409)
            #expect(try member.error().code == "ALREADY_MEMBER")
        }
    }

    @Test func theRoleRulesAndTheTenantBoundWhoMayInviteWhom() async throws {
        try await TestStack.with(.auth) { stack in
            let (tenant, admin, user, other) = try await Self.cast(stack)
            let owner = tenant.owner
            let email = Fixtures.uniqueEmail("new")

            // A user invites nobody; an admin invites no admin or owner; nobody invites above their own role.
            for (actor, role) in [(user, "user"), (admin, "admin"), (admin, "owner"), (owner, "super_admin")] {
                let answer = try await Self.invite(stack, as: actor, ["email": email, "role": role])
                #expect(answer.status == 403, "\(role): \(answer.text)")
                #expect(try answer.error().code == "ROLE_NOT_ALLOWED")
            }
            // Another tenant does not exist for an admin or an owner.
            let foreign = try await Self.invite(stack, as: owner, ["email": email, "role": "user", "tenant_id": other.id.uuidString])
            #expect(foreign.status == 404)
            #expect(try foreign.error().code == "TENANT_NOT_FOUND")
            #expect(try await Self.invitationRows(stack) == 0)
            #expect(try await EmailFlowTests.mails(stack, to: email) == 0)

            // Members of this tenant and accounts elsewhere are conflicts (emails are unique across tenants).
            let inTenant = try await Self.invite(stack, as: admin, ["email": user.email.uppercased(), "role": "user"])
            #expect(inTenant.status == 409)
            #expect(try inTenant.error().code == "ALREADY_MEMBER")
            let elsewhere = try await Self.invite(stack, as: admin, ["email": other.owner.email, "role": "user"])
            #expect(elsewhere.status == 409)
            #expect(try elsewhere.error().code == "EMAIL_TAKEN")
            #expect(try await Self.invitationRows(stack) == 0)

            // The owner invites an admin and an owner.
            let asAdmin = try await Self.invite(stack, as: owner, ["email": email, "role": "admin"])
            #expect(asAdmin.status == 201)
            let first = try asAdmin.json(Invitation.self)
            let firstToken = try await Self.token(stack, to: email)
            #expect(try await Self.invite(stack, as: owner, ["email": Fixtures.uniqueEmail("co-owner"), "role": "owner"]).status == 201)
            // null is as good as absent: the caller's own tenant, by mail.
            let nulls = try await TestHTTP.send(
                .POST, stack.url(.auth) + "/api/auth/invite", headers: Fixtures.bearer(owner.token),
                body: #"{"email":"\#(Fixtures.uniqueEmail("nulls"))","role":"user","full_name":null,"tenant_id":null,"send_invite_email":null}"#
            )
            #expect(nulls.status == 201, "\(nulls.text)")
            #expect(try nulls.json(Invitation.self).tenantId == tenant.id.uuidString.lowercased())

            // Inviting a pending email again replaces its invitation, within the rules for the one replaced:
            // an admin cannot turn the owner's admin invitation into a user one.
            let downgrade = try await Self.invite(stack, as: admin, ["email": email, "role": "user"])
            #expect(downgrade.status == 403)
            #expect(try await Self.count(stack, "SELECT count(*)::int FROM invitations WHERE email = \(email) AND role = 'admin' AND revoked_at IS NULL") == 1)
            let replaced = try await Self.invite(stack, as: owner, ["email": email, "role": "user"])
            #expect(replaced.status == 201)
            let second = try replaced.json(Invitation.self)
            #expect(second.invitationId != first.invitationId && second.role == "user")
            #expect(try await Self.count(stack, "SELECT count(*)::int FROM invitations WHERE email = \(email)") == 2)
            #expect(
                try await Self.count(
                    stack, "SELECT count(*)::int FROM invitations WHERE id = \(UUID(uuidString: first.invitationId)!) AND revoked_at IS NOT NULL"
                ) == 1
            )
            #expect(try await EmailFlowTests.mails(stack, to: email) == 2)
            // The first link is dead; the second one joins with the second role.
            #expect(try await Self.accept(stack, ["token": firstToken, "password": Self.password, "full_name": "Ned"]).status == 401)
            let accepted = try await Self.accept(stack, ["token": try await Self.token(stack, to: email), "password": Self.password, "full_name": "Ned"])
            #expect(accepted.status == 201)
            #expect(try accepted.json(Accepted.self).role == "user")
        }
    }

    @Test func badInputIsRefusedAndChangesNothing() async throws {
        try await TestStack.with(.auth) { stack in
            let tenant = try await UserManagementTests.tenant(stack)
            let owner = tenant.owner
            let invite = stack.url(.auth) + "/api/auth/invite"
            for raw in ["{", "[]", "null", #"{"email":"a@example.com","email":"b@example.com","role":"user"}"#] {
                let answer = try await TestHTTP.send(.POST, invite, headers: Fixtures.bearer(owner.token), body: raw)
                #expect(answer.status == 400, "\(raw): \(answer.text)")
                #expect(try answer.error().code == "MALFORMED_JSON")
            }
            let cases: [([String: String], String)] = [
                (["role": "user"], "email"),
                (["email": "", "role": "user"], "email"),
                (["email": "not-an-email", "role": "user"], "email"),
                (["email": "ünï@example.com", "role": "user"], "email"),
                (["email": "(x)@example.com", "role": "user"], "email"),
                (["email": Fixtures.uniqueEmail(), "role": "king"], "role"),
                (["email": Fixtures.uniqueEmail()], "role"),
                (["email": Fixtures.uniqueEmail(), "role": "user", "full_name": String(repeating: "x", count: 201)], "full_name"),
                (["email": Fixtures.uniqueEmail(), "role": "user", "tenant_id": "nope"], "tenant_id"),
                (["email": Fixtures.uniqueEmail(), "role": "user\u{0}"], "role"),
            ]
            for (body, field) in cases {
                let answer = try await Self.invite(stack, as: owner, body)
                #expect(answer.status == 422, "\(body): \(answer.text)")
                #expect(try answer.error().fields?[field] != nil, "\(body): \(answer.text)")
            }
            let noMail = try await TestHTTP.send(
                .POST, invite, headers: Fixtures.bearer(owner.token), body: #"{"email":"x@example.com","role":"user","send_invite_email":false}"#
            )
            #expect(noMail.status == 422)
            #expect(try noMail.error().fields?["send_invite_email"] != nil)
            #expect(try await TestHTTP.send(.POST, invite, body: #"{"email":"x@example.com","role":"user"}"#).status == 401)
            #expect(try await TestHTTP.send(.POST, invite, headers: Fixtures.bearer(owner.token), body: String(repeating: " ", count: 2_000_000)).status == 413)
            #expect(try await Self.invitationRows(stack) == 0)
            #expect(try await Self.count(stack, "SELECT count(*)::int FROM mail_outbox WHERE subject LIKE 'You are invited%'") == 0)

            // Accepting: the body's shape and the password policy first, then the token.
            let accept = stack.url(.auth) + "/api/auth/accept-invitation"
            for raw in ["", "{", "[1]", "\"token\""] {
                let answer = try await TestHTTP.send(.POST, accept, body: raw)
                #expect(answer.status == 400, "\(raw): \(answer.text)")
            }
            let acceptCases: [([String: String], String)] = [
                ([:], "token"),
                (["token": "", "password": Self.password, "full_name": "Ann"], "token"),
                (["token": "forged", "password": "weak", "full_name": "Ann"], "password"),
                (["token": "forged", "password": "Password1", "full_name": "Ann"], "password"),
                (["token": "forged", "password": String(repeating: "Aa1", count: 50), "full_name": "Ann"], "password"),
                (["token": "forged", "password": Self.password], "full_name"),
                (["token": "forged", "password": Self.password, "full_name": "   "], "full_name"),
                (["token": "forged", "password": Self.password, "full_name": String(repeating: "x", count: 201)], "full_name"),
            ]
            for (body, field) in acceptCases {
                let answer = try await Self.accept(stack, body)
                #expect(answer.status == 422, "\(body): \(answer.text)")
                #expect(try answer.error().fields?[field] != nil, "\(body): \(answer.text)")
            }
            for token in ["forged", String(repeating: "x", count: 43), String(repeating: "x", count: 5_000), SecretToken.random()] {
                let answer = try await Self.accept(stack, ["token": token, "password": Self.password, "full_name": "Ann"])
                #expect(answer.status == 401)
                #expect(try answer.error().code == "INVITATION_ERROR")
            }
            #expect(try await Self.count(stack, "SELECT count(*)::int FROM users") == 1)
            // The address rule is the one every new account meets: one the mail outbox can take.
            #expect(try await Fixtures.createOwner(authURL: stack.url(.auth), email: "(x)@example.com").status == 422)
            #expect(try await Self.count(stack, "SELECT count(*)::int FROM users") == 1)
        }
    }

    @Test func expiredRevokedAndForeignInvitations() async throws {
        try await TestStack.with(.auth) { stack in
            let (tenant, admin, user, other) = try await Self.cast(stack)
            let owner = tenant.owner

            // Expired (aged in the database rather than waited for): refused, listed as expired.
            let late = Fixtures.uniqueEmail("late")
            #expect(try await Self.invite(stack, as: admin, ["email": late, "role": "user"]).status == 201)
            let lateToken = try await Self.token(stack, to: late)
            _ = try await Self.count(
                stack, "WITH u AS (UPDATE invitations SET expires_at = now() - interval '1 second' WHERE email = \(late) RETURNING 1) SELECT count(*)::int FROM u"
            )
            let expired = try await Self.accept(stack, ["token": lateToken, "password": Self.password, "full_name": "Lee"])
            #expect(expired.status == 401)
            #expect(try expired.error().code == "INVITATION_ERROR")
            #expect(try await Self.userRows(stack, email: late) == 0)
            let expiredList = try await UserManagementTests.send(stack, .GET, "/api/auth/invitations?status=expired", as: admin).json(InvitationList.self)
            #expect(expiredList.invitations.map(\.email) == [late])
            // Inviting the email again makes a fresh invitation in its place.
            #expect(try await Self.invite(stack, as: admin, ["email": late, "role": "user"]).status == 201)
            #expect(try await Self.count(stack, "SELECT count(*)::int FROM invitations WHERE email = \(late) AND revoked_at IS NULL") == 1)

            // Revoking: another tenant's or an unknown id is 404 and changes nothing; role rules apply.
            let soon = Fixtures.uniqueEmail("soon")
            let made = try await Self.invite(stack, as: owner, ["email": soon, "role": "admin"]).json(Invitation.self)
            let id = made.invitationId
            let soonToken = try await Self.token(stack, to: soon)
            let path = "/api/auth/invitations/\(id)"
            let foreign = try await UserManagementTests.send(stack, .DELETE, path, as: other.owner)
            #expect(foreign.status == 404)
            #expect(try foreign.error().code == "INVITATION_NOT_FOUND")
            #expect(try await UserManagementTests.send(stack, .DELETE, "/api/auth/invitations/\(UUID())", as: owner).status == 404)
            #expect(try await UserManagementTests.send(stack, .DELETE, "/api/auth/invitations/not-a-uuid", as: owner).status == 404)
            let byAdmin = try await UserManagementTests.send(stack, .DELETE, path, as: admin)
            #expect(byAdmin.status == 403)
            #expect(try await UserManagementTests.send(stack, .DELETE, path, as: user).status == 403)
            #expect(try await Self.count(stack, "SELECT count(*)::int FROM invitations WHERE email = \(soon) AND revoked_at IS NULL") == 1)

            #expect(try await UserManagementTests.send(stack, .DELETE, path, as: owner).status == 204)
            #expect(try await Self.count(stack, "SELECT count(*)::int FROM invitations WHERE email = \(soon) AND revoked_at IS NOT NULL") == 1)
            let twice = try await UserManagementTests.send(stack, .DELETE, path, as: owner)
            #expect(twice.status == 409)
            #expect(try twice.error().code == "INVITATION_REVOKED")
            let revoked = try await Self.accept(stack, ["token": soonToken, "password": Self.password, "full_name": "Sue"])
            #expect(revoked.status == 401)
            #expect(try await Self.userRows(stack, email: soon) == 0)

            // An accepted invitation stays: deleting it is a conflict (remove the user instead).
            let joined = Fixtures.uniqueEmail("joined")
            let joinedID = try await Self.invite(stack, as: admin, ["email": joined, "role": "user"]).json(Invitation.self).invitationId
            let joinedToken = try await Self.token(stack, to: joined)
            #expect(try await Self.accept(stack, ["token": joinedToken, "password": Self.password, "full_name": "Jo"]).status == 201)
            let acceptedDelete = try await UserManagementTests.send(stack, .DELETE, "/api/auth/invitations/\(joinedID)", as: admin)
            #expect(acceptedDelete.status == 409)
            #expect(try acceptedDelete.error().code == "INVITATION_ACCEPTED")

            // Listing: this tenant only, newest first, filtered and paged.
            #expect(try await Self.invite(stack, as: other.owner, ["email": Fixtures.uniqueEmail("theirs"), "role": "user"]).status == 201)
            let all = try await UserManagementTests.send(stack, .GET, "/api/auth/invitations", as: admin).json(InvitationList.self)
            #expect(all.total == 4 && all.limit == 50 && all.offset == 0)
            #expect(all.invitations.allSatisfy { $0.tenantId == tenant.id.uuidString.lowercased() })
            #expect(all.invitations.first?.email == joined)
            let statuses = all.invitations.map(\.status)
            #expect(statuses.filter { $0 == "revoked" }.count == 2 && statuses.filter { $0 == "pending" }.count == 1 && statuses.contains("accepted"))
            let page = try await UserManagementTests.send(stack, .GET, "/api/auth/invitations?limit=2&offset=3", as: admin).json(InvitationList.self)
            #expect(page.total == 4 && page.invitations.count == 1)
            let pending = try await UserManagementTests.send(stack, .GET, "/api/auth/invitations?status=pending", as: admin).json(InvitationList.self)
            #expect(pending.total == 1 && pending.invitations.first?.email == late)
            let elsewhere = try await UserManagementTests.send(stack, .GET, "/api/auth/invitations?tenant_id=\(other.id)", as: admin).json(InvitationList.self)
            #expect(elsewhere.total == 4)
            let refused = try await UserManagementTests.send(stack, .GET, "/api/auth/invitations", as: user)
            #expect(refused.status == 403)
            #expect(try refused.error().code == "ROLE_NOT_ALLOWED")
            for bad in ["limit=0", "limit=201", "offset=-1", "status=gone", "tenant_id=nope", "limit=x"] {
                let answer = try await UserManagementTests.send(stack, .GET, "/api/auth/invitations?\(bad)", as: admin)
                #expect(answer.status == 422, "\(bad): \(answer.status)")
            }
            #expect(!(try await UserManagementTests.send(stack, .GET, "/api/auth/invitations", as: admin).text.contains("token")))
        }
    }

    @Test func concurrentAcceptsOfOneTokenMakeOneAccount() async throws {
        try await TestStack.with(.auth) { stack in
            let tenant = try await UserManagementTests.tenant(stack)
            let email = Fixtures.uniqueEmail("race")
            #expect(try await Self.invite(stack, as: tenant.owner, ["email": email, "role": "admin"]).status == 201)
            let token = try await Self.token(stack, to: email)
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<6 {
                    group.addTask { try await Self.accept(stack, ["token": token, "password": Self.password, "full_name": "Racer \(index)"]).status }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(statuses.sorted() == [201, 401, 401, 401, 401, 401])
            #expect(try await Self.userRows(stack, email: email) == 1)
            #expect(try await Self.count(stack, "SELECT count(*)::int FROM auth_sessions s JOIN users u ON u.id = s.user_id WHERE u.email = \(email)") == 1)
        }
    }

    @Test func anEmailThatGotAnAccountMeanwhileIsAConflictAndNothingIsMade() async throws {
        try await TestStack.with(.auth) { stack in
            let tenant = try await UserManagementTests.tenant(stack)
            let email = Fixtures.uniqueEmail("taken")
            #expect(try await Self.invite(stack, as: tenant.owner, ["email": email, "role": "user"]).status == 201)
            let token = try await Self.token(stack, to: email)
            // The email registers a tenant of its own before accepting.
            #expect(try await Fixtures.createOwner(authURL: stack.url(.auth), email: email).status == 201)
            let answer = try await Self.accept(stack, ["token": token, "password": Self.password, "full_name": "Tim"])
            #expect(answer.status == 409)
            #expect(try answer.error().code == "EMAIL_TAKEN")
            #expect(try await Self.count(stack, "SELECT count(*)::int FROM users WHERE email = \(email) AND tenant_id = \(tenant.id)") == 0)
            #expect(try await Self.count(stack, "SELECT count(*)::int FROM invitations WHERE email = \(email) AND accepted_at IS NULL AND revoked_at IS NULL") == 1)
        }
    }

    @Test func aSuperAdminInvitesIntoAnyTenantAndListsThemAll() async throws {
        let root = Fixtures.uniqueEmail("root")
        try await TestStack.with(.auth, overrides: ["SUPER_ADMIN_EMAIL": root, "SUPER_ADMIN_PASSWORD": "R00t-of-all"]) { stack in
            let superAdmin = try await UserManagementTests.login(stack, root, "R00t-of-all")
            let tenant = try await UserManagementTests.tenant(stack)
            let email = Fixtures.uniqueEmail("owner2")
            let made = try await Self.invite(stack, as: superAdmin, ["email": email, "role": "owner", "tenant_id": tenant.id.uuidString])
            #expect(made.status == 201)
            #expect(try made.json(Invitation.self).tenantId == tenant.id.uuidString.lowercased())
            let platform = try await Self.invite(stack, as: superAdmin, ["email": Fixtures.uniqueEmail("root2"), "role": "super_admin"])
            #expect(platform.status == 201)
            #expect(try platform.json(Invitation.self).tenantId == SuperAdminBootstrap.platformTenantID.uuidString.lowercased())
            // super_admin is the platform's role only; an unknown tenant is 404.
            let misplaced = try await Self.invite(stack, as: superAdmin, ["email": Fixtures.uniqueEmail(), "role": "super_admin", "tenant_id": tenant.id.uuidString])
            #expect(misplaced.status == 422)
            let unknown = try await Self.invite(stack, as: superAdmin, ["email": Fixtures.uniqueEmail(), "role": "user", "tenant_id": UUID().uuidString])
            #expect(unknown.status == 404)
            #expect(try await Self.invitationRows(stack) == 2)

            let all = try await UserManagementTests.send(stack, .GET, "/api/auth/invitations", as: superAdmin).json(InvitationList.self)
            #expect(all.total == 2)
            let one = try await UserManagementTests.send(stack, .GET, "/api/auth/invitations?tenant_id=\(tenant.id)", as: superAdmin).json(InvitationList.self)
            #expect(one.total == 1 && one.invitations.first?.email == email)
            // The tenant's owner sees it, and a super_admin revokes across tenants.
            let seen = try await UserManagementTests.send(stack, .GET, "/api/auth/invitations", as: tenant.owner).json(InvitationList.self)
            #expect(seen.total == 1)
            let id = one.invitations[0].invitationId
            #expect(try await UserManagementTests.send(stack, .DELETE, "/api/auth/invitations/\(id)", as: superAdmin).status == 204)
        }
    }

    /// The happy path through the gateway, and a suspended tenant's invitation refused at acceptance.
    @Test func throughTheGatewayAndNotIntoASuspendedTenant() async throws {
        try await TestStack.with(.auth, .billing, .tenancy, .gateway, overrides: ["RATE_LIMIT_AUTH_PER_MINUTE": "100"]) { stack in
            let gateway = stack.url(.gateway)
            let registered = try await Fixtures.register(at: gateway)
            let email = Fixtures.uniqueEmail("joiner")
            let invited = try await TestHTTP.send(
                .POST, gateway + "/api/auth/invite", headers: Fixtures.bearer(registered.accessToken), json: ["email": email, "role": "admin"]
            )
            #expect(invited.status == 201, "\(invited.text)")
            let accepted = try await TestHTTP.send(
                .POST, gateway + "/api/auth/accept-invitation", json: ["token": try await Self.token(stack, to: email), "password": Self.password, "full_name": "Jay"]
            )
            #expect(accepted.status == 201, "\(accepted.text)")
            let account = try accepted.json(Accepted.self)
            #expect(account.role == "admin" && account.tenantId == registered.tenantId)
            let me = try await TestHTTP.send(.GET, gateway + "/api/auth/me", headers: Fixtures.bearer(account.accessToken))
            #expect(me.status == 200)
            let listed = try await TestHTTP.send(.GET, gateway + "/api/auth/invitations", headers: Fixtures.bearer(account.accessToken))
            #expect(listed.status == 200)
            #expect(try listed.json(InvitationList.self).invitations.first?.status == "accepted")
            let login = try await TestHTTP.send(.POST, gateway + "/api/auth/login", json: ["email": email, "password": Self.password])
            #expect(login.status == 200)
            #expect(try await TestHTTP.send(.GET, gateway + "/api/auth/accept-invitation").status == 405)

            // Another tenant, suspended after inviting: its invitation makes no account.
            let suspended = try await Fixtures.register(at: gateway)
            let late = Fixtures.uniqueEmail("late")
            let lateInvite = try await TestHTTP.send(
                .POST, gateway + "/api/auth/invite", headers: Fixtures.bearer(suspended.accessToken), json: ["email": late, "role": "user"]
            )
            #expect(lateInvite.status == 201)
            try await SignupTests.setTenant(stack, suspended.tenantId, "status = 'suspended'")
            let refused = try await TestHTTP.send(
                .POST, gateway + "/api/auth/accept-invitation", json: ["token": try await Self.token(stack, to: late), "password": Self.password, "full_name": "Lou"]
            )
            #expect(refused.status == 403)
            #expect(try refused.error().code == "TENANT_SUSPENDED")
            #expect(try await Self.userRows(stack, email: late) == 0)
            #expect(try await Self.count(stack, "SELECT count(*)::int FROM invitations WHERE email = \(late) AND accepted_at IS NULL") == 1)
        }
    }
}
