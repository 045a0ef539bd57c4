import Foundation
import HTTPTypes
import InternalAPI
import NIOHTTP1
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

@testable import AuthApp

/// A tenant's API keys at auth: made by admins and above, the secret shown once and kept only as a
/// hash, listed and revoked within the tenant, and exchanged by the gateway (only) for access tokens.
@Suite("auth api keys")
struct APIKeyTests {
    typealias Member = UserManagementTests.Member

    typealias Key = APIKeysController.APIKeyView
    typealias KeyList = APIKeysController.APIKeyList

    static func create(_ stack: TestStack, as member: Member, _ body: [String: any Encodable & Sendable]) async throws -> TestResponse {
        try await TestHTTP.send(
            .POST, stack.url(.auth) + "/api/auth/api-keys", headers: Fixtures.bearer(member.token), body: try Self.json(body)
        )
    }

    static func json(_ body: [String: any Encodable & Sendable]) throws -> String {
        var object: [String: Any] = [:]
        for (key, value) in body { object[key] = try JSONSerialization.jsonObject(with: JSONCoding.encoder.encode(value), options: .fragmentsAllowed) }
        return String(decoding: try JSONSerialization.data(withJSONObject: object), as: UTF8.self)
    }

    static func list(_ stack: TestStack, as member: Member) async throws -> [Key] {
        let answer = try await UserManagementTests.send(stack, .GET, "/api/auth/api-keys", as: member)
        #expect(answer.status == 200, "\(answer.text)")
        return try answer.json(KeyList.self).apiKeys
    }

    /// Asks for a token for `key` as the gateway does.
    static func exchange(_ stack: TestStack, _ key: String) async throws -> TestResponse {
        try await stack.callInternal(.post, .auth, "/internal/gateway/api-keys/exchange", as: .gateway, json: APIKeyExchangeRequest(key: key))
    }

    /// The claims of a token, as its payload says.
    static func claims(_ token: String) throws -> [String: Any] {
        let payload = token.split(separator: ".")[1]
        return try JSONSerialization.jsonObject(with: Data(base64URLEncoded: payload)!) as! [String: Any]
    }

    @Test func adminsMakeKeysWhoseSecretIsShownOnceAndKeptAsAHash() async throws {
        try await TestStack.with(.auth) { stack in
            let tenant = try await UserManagementTests.tenant(stack)
            let made = try await Self.create(stack, as: tenant.owner, ["name": "  CI deploy ", "expires_in_days": 30])
            #expect(made.status == 201, "\(made.text)")
            #expect(made.header("Cache-Control") == "no-store")
            let key = try made.json(Key.self)
            let secret = try #require(key.secret)
            #expect(secret.hasPrefix("sk_live_") && secret.count == 8 + 43 && APIKeyFormat.isWellFormed(secret))
            #expect(key.name == "CI deploy" && key.role == "owner" && key.createdBy == tenant.owner.id)
            #expect(key.prefix == String(secret.prefix(12)) && key.lastFour == String(secret.suffix(4)))
            let expiry = try #require(key.expiresAt)
            #expect(abs(expiry.timeIntervalSince(key.createdAt) - 30 * 86_400) < 2)
            #expect(key.lastUsedAt == nil)

            // The database has the SHA-256 of the secret, and the secret nowhere.
            let database = stack.databases[.auth]!
            #expect(
                try await TestPostgres.count(database, "SELECT count(*)::int FROM api_keys WHERE secret_hash = sha256(convert_to(\(secret), 'UTF8'))") == 1
            )
            let random = String(secret.dropFirst(8))
            #expect(try await TestPostgres.count(database, "SELECT count(*)::int FROM api_keys k WHERE strpos(k::text, \(random)) > 0") == 0)

            // Listed without the secret; an admin sees the owner's key and makes a lesser one.
            let admin = try await UserManagementTests.add(stack, to: tenant, role: .admin)
            let listing = try await UserManagementTests.send(stack, .GET, "/api/auth/api-keys", as: admin)
            #expect(!listing.text.contains(random) && !listing.text.contains("secret"))
            #expect(try listing.json(KeyList.self).apiKeys.map(\.id) == [key.id])
            let lesser = try await Self.create(stack, as: admin, ["name": "Reports", "role": "user"])
            #expect(lesser.status == 201)
            #expect(try lesser.json(Key.self).role == "user")
            #expect(try await Self.create(stack, as: admin, ["name": "Admin by default"]).json(Key.self).role == "admin")
            #expect(try await Self.list(stack, as: admin).map(\.name) == ["Admin by default", "Reports", "CI deploy"])

            // Nobody gives a key a role above their own; users manage no keys at all.
            let above = try await Self.create(stack, as: admin, ["name": "Too much", "role": "owner"])
            #expect(above.status == 403)
            #expect(try above.error().code == "ROLE_NOT_ALLOWED")
            let user = try await UserManagementTests.add(stack, to: tenant, role: .user)
            for (method, path) in [(HTTPMethod.GET, "/api/auth/api-keys"), (.DELETE, "/api/auth/api-keys/\(key.id)")] {
                let refused = try await UserManagementTests.send(stack, method, path, as: user)
                #expect(refused.status == 403)
                #expect(try refused.error().code == "ROLE_NOT_ALLOWED")
            }
            #expect(try await Self.create(stack, as: user, ["name": "Mine"]).status == 403)
            #expect(try await TestPostgres.count(database, "SELECT count(*)::int FROM api_keys") == 3)
            #expect(try await TestHTTP.send(.GET, stack.url(.auth) + "/api/auth/api-keys").status == 401)
        }
    }

    @Test func badRequestsAreRefusedAndChangeNothing() async throws {
        try await TestStack.with(.auth) { stack in
            let owner = try await UserManagementTests.tenant(stack).owner
            let cases: [([String: any Encodable & Sendable], String)] = [
                ([:], "name"),
                (["name": ""], "name"),
                (["name": "   "], "name"),
                (["name": String(repeating: "k", count: 101)], "name"),
                (["name": "bell\u{7}"], "name"),
                (["name": 7], "name"),
                (["name": "ok", "role": "king"], "role"),
                (["name": "ok", "expires_in_days": 0], "expires_in_days"),
                (["name": "ok", "expires_in_days": 366], "expires_in_days"),
                (["name": "ok", "expires_in_days": "soon"], "expires_in_days"),
            ]
            for (body, field) in cases {
                let answer = try await Self.create(stack, as: owner, body)
                #expect(answer.status == 422, "\(body): \(answer.text)")
                #expect(try answer.error().fields?[field] != nil, "\(body): \(answer.text)")
            }
            let notJSON = try await TestHTTP.send(.POST, stack.url(.auth) + "/api/auth/api-keys", headers: Fixtures.bearer(owner.token), body: "{")
            #expect(notJSON.status == 400)
            #expect(try await Self.create(stack, as: owner, ["name": String(repeating: "é", count: 100)]).status == 201)
            #expect(try await TestPostgres.count(stack.databases[.auth]!, "SELECT count(*)::int FROM api_keys") == 1)
        }
    }

    @Test func keysAreRevokedWithinTheirTenantOnly() async throws {
        try await TestStack.with(.auth) { stack in
            let tenant = try await UserManagementTests.tenant(stack)
            let other = try await UserManagementTests.tenant(stack)
            let key = try await Self.create(stack, as: tenant.owner, ["name": "Ours"]).json(Key.self)
            let path = "/api/auth/api-keys/\(key.id)"

            // Another tenant sees nothing of it and cannot touch it.
            #expect(try await Self.list(stack, as: other.owner).isEmpty)
            let foreign = try await UserManagementTests.send(stack, .DELETE, path, as: other.owner)
            #expect(foreign.status == 404)
            #expect(try foreign.error().code == "API_KEY_NOT_FOUND")
            #expect(try await Self.exchange(stack, key.secret!).status == 200)
            for missing in ["/api/auth/api-keys/\(UUID())", "/api/auth/api-keys/not-a-uuid"] {
                #expect(try await UserManagementTests.send(stack, .DELETE, missing, as: tenant.owner).status == 404)
            }

            #expect(try await UserManagementTests.send(stack, .DELETE, path, as: tenant.owner).status == 204)
            #expect(try await UserManagementTests.send(stack, .DELETE, path, as: tenant.owner).status == 404)
            #expect(try await Self.list(stack, as: tenant.owner).isEmpty)
            let refused = try await Self.exchange(stack, key.secret!)
            #expect(refused.status == 401)
            #expect(try refused.error().code == "API_KEY_REVOKED")
            // The gateway learns it from the revocation feed: the key is the session of its tokens.
            let id = UUID(uuidString: key.id)!
            #expect(try await TestPostgres.count(stack.databases[.auth]!, "SELECT count(*)::int FROM revocations WHERE kind = 'session' AND subject = \(id)") == 1)
        }
    }

    @Test func aTenantHasAtMostItsLimitOfKeysInUse() async throws {
        try await TestStack.with(.auth, overrides: ["API_KEYS_PER_TENANT": "3"]) { stack in
            let owner = try await UserManagementTests.tenant(stack).owner
            // Made at once, they still never pass the limit.
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<6 { group.addTask { try await Self.create(stack, as: owner, ["name": "Key \(index)"]).status } }
                return try await group.reduce(into: [Int]()) { $0.append($1) }.sorted()
            }
            #expect(statuses == [201, 201, 201, 409, 409, 409])
            let full = try await Self.create(stack, as: owner, ["name": "One more"])
            #expect(try full.error().code == "API_KEY_LIMIT_REACHED")
            // A revoked or expired key frees its place.
            let keys = try await Self.list(stack, as: owner)
            #expect(try await UserManagementTests.send(stack, .DELETE, "/api/auth/api-keys/\(keys[0].id)", as: owner).status == 204)
            _ = try await TestPostgres.count(
                stack.databases[.auth]!,
                "WITH k AS (UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = \(UUID(uuidString: keys[1].id)!) RETURNING 1) SELECT count(*)::int FROM k"
            )
            #expect(try await Self.create(stack, as: owner, ["name": "Again"]).status == 201)
            #expect(try await Self.create(stack, as: owner, ["name": "And again"]).status == 201)
            #expect(try await Self.create(stack, as: owner, ["name": "Too many"]).status == 409)
            // The expired key is still listed (it says when it expired); the revoked one is not.
            #expect(try await Self.list(stack, as: owner).count == 4)
        }
    }

    @Test func theGatewayExchangesAKeyForATokenOfItsMaker() async throws {
        try await TestStack.with(.auth) { stack in
            let tenant = try await UserManagementTests.tenant(stack)
            let admin = try await UserManagementTests.add(stack, to: tenant, role: .admin)
            let key = try await Self.create(stack, as: admin, ["name": "Sync", "expires_in_days": 1]).json(Key.self)
            let secret = key.secret!

            // Only the gateway may ask.
            let anonymous = try await TestHTTP.send(
                .POST, stack.url(.auth) + "/internal/gateway/api-keys/exchange", json: APIKeyExchangeRequest(key: secret)
            )
            #expect(anonymous.status == 401)
            #expect(try anonymous.error().code == "CALLER_NOT_ALLOWED")
            // tenancy calls auth, but not here.
            let service = try await stack.callInternal(.post, .auth, "/internal/gateway/api-keys/exchange", as: .tenancy, json: APIKeyExchangeRequest(key: secret))
            #expect(service.status == 401)

            let answer = try await Self.exchange(stack, secret)
            #expect(answer.status == 200, "\(answer.text)")
            let reply = try answer.json(APIKeyExchangeReply.self)
            #expect((250...300).contains(reply.expiresIn))
            let claims = try Self.claims(reply.accessToken)
            #expect(claims["sub"] as? String == admin.id && claims["tenant_id"] as? String == tenant.id.uuidString.lowercased())
            #expect(claims["role"] as? String == "admin" && claims["sid"] as? String == key.id && claims["email"] as? String == admin.email)
            // An ordinary access token: auth answers it as the key's maker.
            let me = try await TestHTTP.send(.GET, stack.url(.auth) + "/api/auth/me", headers: Fixtures.bearer(reply.accessToken))
            #expect(me.status == 200 && me.text.contains(admin.id))
            #expect(try await Self.list(stack, as: admin).first?.lastUsedAt != nil)

            // A key's token lists and revokes keys, but makes none: a key must not outlive its revocation.
            let byKey = Member(id: admin.id, email: admin.email, token: reply.accessToken, refreshToken: "")
            #expect(try await Self.list(stack, as: byKey).count == 1)
            let made = try await Self.create(stack, as: byKey, ["name": "Child"])
            #expect(made.status == 403)
            #expect(try made.error().code == "API_KEY_NOT_ALLOWED")

            // A key expiring soon gets a token that expires with it; an expired key none.
            let database = stack.databases[.auth]!
            let id = UUID(uuidString: key.id)!
            _ = try await TestPostgres.count(
                database, "WITH k AS (UPDATE api_keys SET expires_at = now() + interval '20 seconds' WHERE id = \(id) RETURNING 1) SELECT count(*)::int FROM k"
            )
            let short = try await Self.exchange(stack, secret).json(APIKeyExchangeReply.self)
            #expect((18...20).contains(short.expiresIn))
            _ = try await TestPostgres.count(
                database, "WITH k AS (UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = \(id) RETURNING 1) SELECT count(*)::int FROM k"
            )
            let expired = try await Self.exchange(stack, secret)
            #expect(expired.status == 401)
            #expect(try expired.error().code == "API_KEY_EXPIRED")

            for unknown in [APIKeyFormat.prefix + String(repeating: "A", count: 43), "sk_live_short", "", "eyJhbGciOiJFUzI1NiJ9.e30.x"] {
                let refused = try await Self.exchange(stack, unknown)
                #expect(refused.status == 401, "\(unknown)")
                #expect(try refused.error().code == "INVALID_API_KEY")
            }
        }
    }

    @Test func aKeyNeverHasMoreThanItsMakerAndGoesWithThem() async throws {
        try await TestStack.with(.auth) { stack in
            let tenant = try await UserManagementTests.tenant(stack)
            let admin = try await UserManagementTests.add(stack, to: tenant, role: .admin)
            let key = try await Self.create(stack, as: admin, ["name": "Admin key"]).json(Key.self)
            let before = try Self.claims(try await Self.exchange(stack, key.secret!).json(APIKeyExchangeReply.self).accessToken)
            #expect(before["role"] as? String == "admin")

            // The maker is demoted: the key keeps its role on paper, its tokens carry the maker's.
            let demoted = try await UserManagementTests.send(stack, .PUT, "/api/auth/users/\(admin.id)/role", as: tenant.owner, json: ["role": "user"])
            #expect(demoted.status == 200)
            let after = try Self.claims(try await Self.exchange(stack, key.secret!).json(APIKeyExchangeReply.self).accessToken)
            #expect(after["role"] as? String == "user")
            #expect((after["ver"] as? Int ?? 0) > (before["ver"] as? Int ?? 0))
            #expect(try await Self.list(stack, as: tenant.owner).first?.role == "admin")

            // The maker is deleted: the key stops working and is no longer listed.
            #expect(try await UserManagementTests.send(stack, .DELETE, "/api/auth/users/\(admin.id)", as: tenant.owner).status == 204)
            let gone = try await Self.exchange(stack, key.secret!)
            #expect(gone.status == 401)
            #expect(try gone.error().code == "API_KEY_REVOKED")
            #expect(try await Self.list(stack, as: tenant.owner).isEmpty)
        }
    }
}
