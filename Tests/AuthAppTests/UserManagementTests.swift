import Foundation
import InternalAPI
import NIOHTTP1
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

@testable import AuthApp

/// Users of a tenant managed by its admins and owners, and one's own profile and password, over
/// real HTTP against auth's own database.
@Suite("auth users")
struct UserManagementTests {
    struct Member: Sendable {
        var id: String
        var email: String
        var token: String
        var refreshToken: String
    }

    /// A tenant with an owner; `add` puts more users in it.
    struct Tenant: Sendable {
        var id: UUID
        var owner: Member
    }

    static func tenant(_ stack: TestStack) async throws -> Tenant {
        let tenantID = UUID()
        let email = Fixtures.uniqueEmail()
        let created = try await Fixtures.createOwner(authURL: stack.url(.auth), tenantID: tenantID, email: email)
        #expect(created.status == 201)
        return Tenant(id: tenantID, owner: try await login(stack, email))
    }

    static func login(_ stack: TestStack, _ email: String, _ password: String = Fixtures.password) async throws -> Member {
        let answer = try await TestHTTP.send(.POST, stack.url(.auth) + "/api/auth/login", json: ["email": email, "password": password])
        #expect(answer.status == 200, "login \(email): \(answer.text)")
        struct Login: Decodable { var userId: String; var accessToken: String; var refreshToken: String }
        let body = try answer.json(Login.self)
        return Member(id: body.userId, email: email, token: body.accessToken, refreshToken: body.refreshToken)
    }

    /// Puts a user of `role` in the tenant (as an invitation will), then signs them in.
    static func add(_ stack: TestStack, to tenant: Tenant, role: Role, verified: Bool = false) async throws -> Member {
        let email = Fixtures.uniqueEmail(role.rawValue.replacingOccurrences(of: "_", with: ""))
        let hash = try await PasswordHasher(cost: 4).hash(Fixtures.password)
        _ = try await TestPostgres.count(
            stack.databases[.auth]!,
            """
            WITH u AS (
                INSERT INTO users (id, tenant_id, email, password_hash, role, email_verified_at)
                VALUES (\(UUID()), \(tenant.id), \(email), \(hash), \(role.rawValue), \(verified ? Date() : nil)) RETURNING 1
            ) SELECT count(*)::int FROM u
            """
        )
        return try await login(stack, email)
    }

    static func send(_ stack: TestStack, _ method: HTTPMethod, _ path: String, as member: Member, json: (any Encodable & Sendable)? = nil) async throws -> TestResponse {
        if let json {
            return try await TestHTTP.send(method, stack.url(.auth) + path, headers: Fixtures.bearer(member.token), json: json)
        }
        return try await TestHTTP.send(method, stack.url(.auth) + path, headers: Fixtures.bearer(member.token))
    }

    static func role(_ stack: TestStack, _ member: Member) async throws -> String? {
        let rows = try await TestPostgres.withClient(stack.databases[.auth]!) { client in
            try await client.query("SELECT role FROM users WHERE id = \(UUID(uuidString: member.id)!)").collect()
        }
        return try rows.first?.decode(String.self)
    }

    struct UserList: Decodable {
        struct User: Decodable { var userId: String; var role: String; var status: String; var emailVerified: Bool; var tenantId: String }
        var users: [User]
        var total: Int
        var limit: Int
        var offset: Int
    }

    @Test func adminsListTheirOwnTenantWithFiltersAndPages() async throws {
        try await TestStack.with(.auth) { stack in
            let tenant = try await Self.tenant(stack)
            let admin = try await Self.add(stack, to: tenant, role: .admin, verified: true)
            let user = try await Self.add(stack, to: tenant, role: .user)
            let other = try await Self.tenant(stack)

            let all = try await Self.send(stack, .GET, "/api/auth/users", as: admin).json(UserList.self)
            #expect(all.total == 3 && all.users.count == 3 && all.limit == 50 && all.offset == 0)
            #expect(all.users.allSatisfy { $0.tenantId == tenant.id.uuidString.lowercased() })
            #expect(!all.users.contains { $0.userId == other.owner.id })
            let page = try await Self.send(stack, .GET, "/api/auth/users?limit=2&offset=2", as: admin).json(UserList.self)
            #expect(page.total == 3 && page.users.count == 1)
            let users = try await Self.send(stack, .GET, "/api/auth/users?role=user", as: admin).json(UserList.self)
            #expect(users.users.map(\.userId) == [user.id])
            let verified = try await Self.send(stack, .GET, "/api/auth/users?status=active", as: admin).json(UserList.self)
            #expect(verified.users.map(\.userId) == [admin.id] && verified.users.first?.emailVerified == true)
            // Asking for another tenant changes nothing for a tenant admin.
            let elsewhere = try await Self.send(stack, .GET, "/api/auth/users?tenant_id=\(other.id)", as: admin).json(UserList.self)
            #expect(elsewhere.total == 3)

            let refused = try await Self.send(stack, .GET, "/api/auth/users", as: user)
            #expect(refused.status == 403)
            #expect(try refused.error().code == "ROLE_NOT_ALLOWED")
            for bad in ["limit=0", "limit=201", "offset=-1", "role=king", "status=gone", "tenant_id=nope", "limit=x"] {
                let answer = try await Self.send(stack, .GET, "/api/auth/users?\(bad)", as: admin)
                #expect(answer.status == 422, "\(bad): \(answer.status)")
            }
        }
    }

    @Test func roleChangesFollowTheRulesAndVoidTheOldRole() async throws {
        try await TestStack.with(.auth) { stack in
            let tenant = try await Self.tenant(stack)
            let admin = try await Self.add(stack, to: tenant, role: .admin)
            let user = try await Self.add(stack, to: tenant, role: .user)
            let other = try await Self.tenant(stack)
            let path = "/api/auth/users/\(user.id)/role"

            // An admin grants nothing above user-level, manages no admin or owner; a user manages nobody.
            for (actor, target, role) in [(admin, user, "admin"), (admin, tenant.owner, "user"), (user, admin, "user")] {
                let answer = try await Self.send(stack, .PUT, "/api/auth/users/\(target.id)/role", as: actor, json: ["role": role])
                #expect(answer.status == 403, "\(role): \(answer.text)")
                #expect(try answer.error().code == "ROLE_NOT_ALLOWED")
            }
            let userRole = try await Self.role(stack, user)
            let adminRole = try await Self.role(stack, admin)
            #expect(userRole == "user" && adminRole == "admin")
            // Another tenant's user is not found, and unchanged.
            let foreign = try await Self.send(stack, .PUT, "/api/auth/users/\(other.owner.id)/role", as: tenant.owner, json: ["role": "user"])
            #expect(foreign.status == 404)
            #expect(try await Self.role(stack, other.owner) == "owner")
            #expect(try await Self.send(stack, .PUT, "/api/auth/users/\(UUID())/role", as: tenant.owner, json: ["role": "user"]).status == 404)
            #expect(try await Self.send(stack, .PUT, "/api/auth/users/not-a-uuid/role", as: tenant.owner, json: ["role": "user"]).status == 404)
            #expect(try await Self.send(stack, .PUT, path, as: tenant.owner, json: ["role": "king"]).status == 422)
            #expect(try await Self.send(stack, .PUT, path, as: tenant.owner, json: ["role": "super_admin"]).status == 403)

            // The owner promotes: the user's old token (role user) is refused, a refresh carries the new role.
            let promoted = try await Self.send(stack, .PUT, path, as: tenant.owner, json: ["role": "admin"])
            #expect(promoted.status == 200)
            #expect(promoted.text.contains(#""role":"admin""#))
            #expect(try await Self.role(stack, user) == "admin")
            let stale = try await Self.send(stack, .GET, "/api/auth/me", as: user)
            #expect(stale.status == 401)
            #expect(try stale.error().code == "TOKEN_REVOKED")
            let refreshed = try await TestHTTP.send(.POST, stack.url(.auth) + "/api/auth/refresh", json: ["refresh_token": user.refreshToken])
            #expect(refreshed.status == 200)
            #expect(refreshed.text.contains(#""role":"admin""#))
        }
    }

    @Test func theLastOwnerStaysEvenWhenTwoOwnersDemoteEachOtherAtOnce() async throws {
        try await TestStack.with(.auth) { stack in
            let tenant = try await Self.tenant(stack)
            let alone = try await Self.send(stack, .PUT, "/api/auth/users/\(tenant.owner.id)/role", as: tenant.owner, json: ["role": "admin"])
            #expect(alone.status == 409)
            #expect(try alone.error().code == "LAST_OWNER")
            let deleteAlone = try await Self.send(stack, .DELETE, "/api/auth/users/\(tenant.owner.id)", as: tenant.owner)
            #expect(deleteAlone.status == 409)

            let second = try await Self.add(stack, to: tenant, role: .owner)
            let owner = tenant.owner
            async let first = Self.send(stack, .PUT, "/api/auth/users/\(second.id)/role", as: owner, json: ["role": "admin"])
            async let other = Self.send(stack, .PUT, "/api/auth/users/\(owner.id)/role", as: second, json: ["role": "admin"])
            let statuses = try await [first.status, other.status].sorted()
            #expect(statuses == [200, 409])
            let owners = try await TestPostgres.count(
                stack.databases[.auth]!, "SELECT count(*)::int FROM users WHERE tenant_id = \(tenant.id) AND role = 'owner' AND deleted_at IS NULL"
            )
            #expect(owners == 1)
        }
    }

    @Test func deletedUsersAreGoneEverywhere() async throws {
        try await TestStack.with(.auth) { stack in
            let tenant = try await Self.tenant(stack)
            let admin = try await Self.add(stack, to: tenant, role: .admin)
            let user = try await Self.add(stack, to: tenant, role: .user)
            #expect(try await Self.send(stack, .DELETE, "/api/auth/users/\(tenant.owner.id)", as: admin).status == 403)
            let other = try await Self.tenant(stack)
            #expect(try await Self.send(stack, .DELETE, "/api/auth/users/\(other.owner.id)", as: tenant.owner).status == 404)

            let deleted = try await Self.send(stack, .DELETE, "/api/auth/users/\(user.id)", as: admin)
            #expect(deleted.status == 204)
            #expect(try await Self.send(stack, .DELETE, "/api/auth/users/\(user.id)", as: admin).status == 404)
            // Their token, their refresh token and their password all stop working.
            #expect(try await Self.send(stack, .GET, "/api/auth/me", as: user).status == 401)
            #expect(try await TestHTTP.send(.POST, stack.url(.auth) + "/api/auth/refresh", json: ["refresh_token": user.refreshToken]).status == 401)
            let login = try await TestHTTP.send(.POST, stack.url(.auth) + "/api/auth/login", json: ["email": user.email, "password": Fixtures.password])
            #expect(login.status == 403)
            #expect(try login.error().code == "ACCOUNT_DELETED")
            let userID = UUID(uuidString: user.id)!
            #expect(
                try await TestPostgres.count(
                    stack.databases[.auth]!,
                    "SELECT count(*)::int FROM revocations WHERE kind = 'user' AND subject = \(userID) AND min_token_version = \(Int(Int32.max))"
                ) == 1
            )
            let listed = try await Self.send(stack, .GET, "/api/auth/users", as: admin).json(UserList.self)
            #expect(!listed.users.contains { $0.userId == user.id } && listed.total == 2)
            // The email is free for a new account.
            #expect(try await Fixtures.createOwner(authURL: stack.url(.auth), email: user.email).status == 201)
        }
    }

    @Test func ownProfileAndPassword() async throws {
        try await TestStack.with(.auth) { stack in
            let tenant = try await Self.tenant(stack)
            let me = tenant.owner
            let renamed = try await Self.send(stack, .PATCH, "/api/auth/me", as: me, json: ["full_name": "  Ada Lovelace "])
            #expect(renamed.status == 200)
            #expect(renamed.text.contains(#""full_name":"Ada Lovelace""#))
            #expect(try await Self.send(stack, .PATCH, "/api/auth/me", as: me, json: ["full_name": String(repeating: "x", count: 201)]).status == 422)
            #expect(try await Self.send(stack, .GET, "/api/auth/me", as: me).text.contains("Ada Lovelace"))

            let elsewhere = try await Self.login(stack, me.email)
            let change = "/api/auth/change-password"
            let newPassword = "N3w-Passw0rd"
            let cases: [([String: String], String)] = [
                (["current_password": "Wr0ng-password", "new_password": newPassword, "confirm_password": newPassword], "current_password"),
                (["current_password": Fixtures.password, "new_password": newPassword, "confirm_password": "other"], "confirm_password"),
                (["current_password": Fixtures.password, "new_password": "weak", "confirm_password": "weak"], "new_password"),
                (["current_password": Fixtures.password, "new_password": Fixtures.password, "confirm_password": Fixtures.password], "new_password"),
            ]
            for (body, field) in cases {
                let answer = try await Self.send(stack, .POST, change, as: me, json: body)
                #expect(answer.status == 422)
                #expect(try answer.error().fields?[field] != nil, "\(field)")
            }
            let changed = try await Self.send(
                stack, .POST, change, as: me, json: ["current_password": Fixtures.password, "new_password": newPassword, "confirm_password": newPassword]
            )
            #expect(changed.status == 200)
            struct Changed: Decodable { var accessToken: String }
            let fresh = Member(id: me.id, email: me.email, token: try changed.json(Changed.self).accessToken, refreshToken: me.refreshToken)
            #expect(try await Self.send(stack, .GET, "/api/auth/me", as: fresh).status == 200)
            #expect(try await Self.send(stack, .GET, "/api/auth/me", as: me).status == 401)
            // This session goes on; the other one is over.
            #expect(try await TestHTTP.send(.POST, stack.url(.auth) + "/api/auth/refresh", json: ["refresh_token": me.refreshToken]).status == 200)
            #expect(try await TestHTTP.send(.POST, stack.url(.auth) + "/api/auth/refresh", json: ["refresh_token": elsewhere.refreshToken]).status == 401)
            let oldLogin = try await TestHTTP.send(.POST, stack.url(.auth) + "/api/auth/login", json: ["email": me.email, "password": Fixtures.password])
            #expect(oldLogin.status == 401)
            _ = try await Self.login(stack, me.email, newPassword)
        }
    }

    @Test func roleRules() {
        #expect(RoleRules.refusal(actor: .owner, current: .user, new: .admin) == nil)
        #expect(RoleRules.refusal(actor: .owner, current: .owner, new: .user) == nil)
        #expect(RoleRules.refusal(actor: .owner, current: .user, new: .superAdmin) != nil)
        #expect(RoleRules.refusal(actor: .admin, current: .user, new: .user) == nil)
        #expect(RoleRules.refusal(actor: .admin, current: .user, new: nil) == nil)
        #expect(RoleRules.refusal(actor: .admin, current: .admin, new: .user) != nil)
        #expect(RoleRules.refusal(actor: .admin, current: .user, new: .admin) != nil)
        #expect(RoleRules.refusal(actor: .user, current: .user, new: .user) != nil)
        #expect(RoleRules.refusal(actor: .superAdmin, current: .owner, new: nil) == nil)
    }
}
