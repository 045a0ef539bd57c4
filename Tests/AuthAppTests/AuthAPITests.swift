import Foundation
import HTTPTypes
import InternalAPI
import JWTKit
import NIOCore
import NIOHTTP1
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

@testable import AuthApp

/// auth over real HTTP against its own fresh database.
@Suite("auth")
struct AuthAPITests {
    static func createOwner(_ stack: TestStack, email: String, password: String = Fixtures.password) async throws -> TestResponse {
        try await Fixtures.createOwner(authURL: stack.url(.auth), email: email, password: password)
    }

    @Test func loginReturnsTokenThatMeAccepts() async throws {
        try await TestStack.with(.auth) { stack in
            let email = Fixtures.uniqueEmail()
            let created = try await Self.createOwner(stack, email: email)
            #expect(created.status == 201)
            let owner = try created.json(CreatedOwner.self)

            let login = try await TestHTTP.send(.POST, stack.url(.auth) + "/api/auth/login", json: ["email": email.uppercased(), "password": Fixtures.password])
            #expect(login.status == 200)
            struct Login: Decodable { var accessToken: String; var tokenType: String; var expiresIn: Int; var userId: String; var role: String; var tenantName: String }
            let body = try login.json(Login.self)
            #expect(body.tokenType == "bearer")
            #expect(body.expiresIn == 86_400)
            #expect(body.userId == owner.userId.uuidString.lowercased())
            #expect(body.role == "owner")
            #expect(body.tenantName == "Acme")

            let me = try await TestHTTP.send(.GET, stack.url(.auth) + "/api/auth/me", headers: Fixtures.bearer(body.accessToken))
            #expect(me.status == 200)
            struct Me: Decodable { var userId: String; var email: String; var tenantSlug: String; var isSupabaseAuth: Bool }
            let meBody = try me.json(Me.self)
            #expect(meBody.email == email)
            #expect(meBody.tenantSlug.hasPrefix("acme-"))
            #expect(meBody.isSupabaseAuth == false)

            let stored = try await TestPostgres.count(
                stack.databases[.auth]!, "SELECT count(*)::int FROM users WHERE email = \(email) AND role = 'owner' AND password_hash LIKE 'sha256$$2%'"
            )
            #expect(stored == 1)
        }
    }

    @Test func wrongPasswordAndUnknownEmailGetTheSameAnswer() async throws {
        try await TestStack.with(.auth) { stack in
            let email = Fixtures.uniqueEmail()
            #expect(try await Self.createOwner(stack, email: email).status == 201)
            let wrong = try await TestHTTP.send(.POST, stack.url(.auth) + "/api/auth/login", json: ["email": email, "password": "Wrong1234"])
            let unknown = try await TestHTTP.send(
                .POST, stack.url(.auth) + "/api/auth/login", json: ["email": "nobody@example.com", "password": "Wrong1234"]
            )
            #expect(wrong.status == 401)
            #expect(unknown.status == 401)
            #expect(try wrong.error().detail == unknown.error().detail)
            #expect(try wrong.error().code == "INVALID_CREDENTIALS")
            #expect(try unknown.error().code == "INVALID_CREDENTIALS")
        }
    }

    @Test func badLoginBodies() async throws {
        try await TestStack.with(.auth) { stack in
            let url = stack.url(.auth) + "/api/auth/login"
            let malformed = try await TestHTTP.send(.POST, url, body: "{not json")
            #expect(malformed.status == 400)
            #expect(try malformed.error().code == "MALFORMED_JSON")
            #expect(try malformed.error().requestId != nil)

            let missing = try await TestHTTP.send(.POST, url, json: ["email": "a@example.com"])
            #expect(missing.status == 422)
            #expect(try missing.error().fields?["password"] == ["is required"])

            let wrongType = try await TestHTTP.send(.POST, url, body: #"{"email": 5, "password": "x"}"#)
            #expect(wrongType.status == 422)
            #expect(try wrongType.error().fields?["email"] != nil)

            let empty = try await TestHTTP.send(.POST, url, json: ["email": "", "password": ""])
            #expect(empty.status == 422)

            let oversized = try await TestHTTP.send(
                .POST, url, body: #"{"email":"a@example.com","password":""# + String(repeating: "x", count: 2 << 20) + #""}"#
            )
            #expect(oversized.status == 413)
            #expect(try oversized.error().code == "PAYLOAD_TOO_LARGE")
        }
    }

    @Test func ownerCreationValidatesAndRefusesDuplicates() async throws {
        try await TestStack.with(.auth) { stack in
            let weak = try await Self.createOwner(stack, email: Fixtures.uniqueEmail(), password: "password")
            #expect(weak.status == 422)
            let fields = try weak.error().fields?["password"] ?? []
            #expect(fields.contains("must contain an upper-case letter"))
            #expect(fields.contains("must contain a digit"))

            // The shape is right, but it is among the most common passwords (compared lower-cased).
            for common in ["Password1", "Qwerty123", "Iloveyou1"] {
                let answer = try await Self.createOwner(stack, email: Fixtures.uniqueEmail(), password: common)
                #expect(answer.status == 422, "\(common)")
                #expect(try answer.error().fields?["password"] == ["is one of the most common passwords; choose another"])
            }
            #expect(CommonPasswords.set.count == 11_611)
            #expect(!CommonPasswords.contains(Fixtures.password))

            let badEmail = try await Self.createOwner(stack, email: "not-an-email")
            #expect(badEmail.status == 422)
            #expect(try badEmail.error().fields?["email"] != nil)

            let email = Fixtures.uniqueEmail()
            #expect(try await Self.createOwner(stack, email: email).status == 201)
            let duplicate = try await Self.createOwner(stack, email: email.uppercased())
            #expect(duplicate.status == 409)
            #expect(try duplicate.error().code == "EMAIL_TAKEN")
            let users = try await TestPostgres.count(stack.databases[.auth]!, "SELECT count(*)::int FROM users")
            #expect(users == 1)
        }
    }

    /// bcrypt alone reads 72 bytes and stops at NUL; every character of a long password must count.
    @Test func longPasswordsCountToTheirLastCharacterAndNULIsRefused() async throws {
        try await TestStack.with(.auth) { stack in
            let email = Fixtures.uniqueEmail()
            let long = "Aa1" + String(repeating: "é", count: 60) + "tail-A"
            #expect(long.utf8.count > 72 && long.unicodeScalars.count <= 128)
            #expect(try await Self.createOwner(stack, email: email, password: long).status == 201)
            let stored = try await TestPostgres.withClient(stack.databases[.auth]!) { client in
                var hash = ""
                for try await value in try await client.query("SELECT password_hash FROM users WHERE email = \(email)").decode(String.self) {
                    hash = value
                }
                return hash
            }
            #expect(stored.hasPrefix("sha256$$2"))
            let login = { (password: String) in
                try await TestHTTP.send(.POST, stack.url(.auth) + "/api/auth/login", json: ["email": email, "password": password])
            }
            #expect(try await login(long).status == 200)
            // Same first 72 bytes, another ending: refused.
            #expect(try await login(String(long.dropLast()) + "B").status == 401)

            let tooLong = try await Self.createOwner(stack, email: Fixtures.uniqueEmail(), password: "Aa1" + String(repeating: "x", count: 126))
            #expect(tooLong.status == 422)
            #expect(try tooLong.error().fields?["password"]?.contains("must be at most 128 characters") == true)

            let withNUL = try await TestHTTP.send(
                .POST, stack.url(.auth) + "/api/auth/login", body: #"{"email":"\#(email)","password":"Aa1\u0000rest"}"#
            )
            #expect(withNUL.status == 422)
            #expect(try withNUL.error().fields?["password"] != nil)
        }
    }

    /// Owner creation answers tenancy alone, with a fresh token made for auth and for this very request.
    @Test func ownerCreationAnswersTenancyAlone() async throws {
        try await TestStack.with(.auth) { stack in
            let url = stack.url(.auth) + "/internal/owners"
            let request = CreateOwnerRequest(
                tenantId: UUID(), tenantName: "X", tenantSlug: "x", email: Fixtures.uniqueEmail(), password: Fixtures.password, fullName: nil
            )
            let body = Array(try JSONCoding.encoder.encode(request))
            let users = { try await TestPostgres.count(stack.databases[.auth]!, "SELECT count(*)::int FROM users") }
            func refused(_ headers: [String: String], _ why: Comment) async throws {
                let response = try await TestHTTP.send(.POST, url, headers: headers, bytes: body)
                #expect(response.status == 401, why)
                #expect(try response.error().code == "CALLER_NOT_ALLOWED", why)
                #expect(try await users() == 0, why)
            }
            try await refused([:], "no token")
            for caller in [ServiceName.billing, .chat, .gateway] {
                try await refused(try await TestStack.callerHeaders(as: caller, to: .auth, .post, url, body: body), "unlisted caller \(caller)")
            }
            try await refused(try await TestStack.callerHeaders(as: .tenancy, to: .billing, .post, url, body: body), "a token for another callee")
            let stranger = try await CallerIdentity(name: "tenancy", privateKeyPEM: CallerIdentity.makeKeyPair().privateKeyPEM)
            try await refused(
                ["X-Caller-Token": try await stranger.token(for: "auth", method: .post, target: "/internal/owners", body: ByteBuffer(bytes: body))],
                "another key claiming to be tenancy"
            )
            try await refused(
                try await TestStack.callerHeaders(as: .tenancy, to: .auth, .post, url, body: Array(#"{"other":"body"}"#.utf8)),
                "a token made for another body"
            )
            try await refused(
                try await TestStack.callerHeaders(as: .tenancy, to: .auth, .post, stack.url(.auth) + "/internal/tenants/x", body: body),
                "a token made for another route"
            )
            let tenancy = try await CallerIdentity(name: "tenancy", privateKeyPEM: TestStack.serviceKeys[.tenancy]!.privateKeyPEM)
            let expired = try await tenancy.token(
                for: "auth", method: .post, target: "/internal/owners", body: ByteBuffer(bytes: body), issued: Date().addingTimeInterval(-60)
            )
            try await refused(["X-Caller-Token": expired], "an expired token")

            let good = try await TestStack.callerHeaders(as: .tenancy, to: .auth, .post, url, body: body)
            #expect(try await TestHTTP.send(.POST, url, headers: good, bytes: body).status == 201)
            let replayed = try await TestHTTP.send(.POST, url, headers: good, bytes: body)
            #expect(replayed.status == 401)
            #expect(try replayed.error().code == "CALLER_NOT_ALLOWED")
            #expect(try await users() == 1)
        }
    }

    @Test func deletingATenantRemovesItsUsers() async throws {
        try await TestStack.with(.auth) { stack in
            let email = Fixtures.uniqueEmail()
            let request = CreateOwnerRequest(tenantId: UUID(), tenantName: "Gone", tenantSlug: "gone", email: email, password: Fixtures.password, fullName: nil)
            #expect(try await stack.callInternal(.post, .auth, "/internal/owners", as: .tenancy, json: request).status == 201)
            let path = "/internal/tenants/\(request.tenantId.uuidString.lowercased())"
            #expect(try await stack.callInternal(.delete, .auth, path, as: .tenancy).status == 204)
            // Idempotent: compensation may be retried.
            #expect(try await stack.callInternal(.delete, .auth, path, as: .tenancy).status == 204)
            #expect(try await TestPostgres.count(stack.databases[.auth]!, "SELECT count(*)::int FROM users") == 0)
            let login = try await TestHTTP.send(.POST, stack.url(.auth) + "/api/auth/login", json: ["email": email, "password": Fixtures.password])
            #expect(login.status == 401)
        }
    }

    @Test func jwksPublishesTheES256KeyThatSignsTokens() async throws {
        try await TestStack.with(.auth) { stack in
            let created = try await Self.createOwner(stack, email: Fixtures.uniqueEmail())
            let token = try created.json(CreatedOwner.self).accessToken
            let jwks = try await TestHTTP.send(.GET, stack.url(.auth) + "/.well-known/jwks.json")
            #expect(jwks.status == 200)
            let set = try JSONDecoder().decode(JWKS.self, from: jwks.body)
            #expect(set.keys.count == 1)
            #expect(set.keys.first?.curve?.rawValue == "P-256")
            let keys = try await JWTKeyCollection().add(jwks: set)
            let claims = try await keys.verify(token, as: AccessTokenClaims.self)
            #expect(claims.role == .owner)
            let header = try JSONSerialization.jsonObject(with: Data(base64URLEncoded: token.split(separator: ".")[0])!) as? [String: String]
            #expect(header?["alg"] == "ES256")
            #expect(header?["kid"] == set.keys.first?.keyIdentifier?.string)
        }
    }

    @Test func signingKeySurvivesRestart() async throws {
        let stack = try await TestStack.make()
        try await stack.start(.auth)
        let first = try await TestHTTP.send(.GET, stack.url(.auth) + "/.well-known/jwks.json").text
        let token = try await Self.createOwner(stack, email: Fixtures.uniqueEmail()).json(CreatedOwner.self).accessToken
        await stack.stop(.auth)
        try await stack.start(.auth)
        let second = try await TestHTTP.send(.GET, stack.url(.auth) + "/.well-known/jwks.json").text
        let me = try await TestHTTP.send(.GET, stack.url(.auth) + "/api/auth/me", headers: Fixtures.bearer(token))
        await stack.stopAll()
        #expect(first == second)
        #expect(me.status == 200)
    }
}

/// `/api/auth/me` refuses every kind of bad token with 401 and the suite's error body.
@Suite("auth tokens")
struct AuthTokenTests {
    @Test func badTokensAreRefused() async throws {
        try await TestStack.with(.auth) { stack in
            let created = try await AuthAPITests.createOwner(stack, email: Fixtures.uniqueEmail())
            let valid = try created.json(CreatedOwner.self).accessToken
            let forge = try await TokenForge.fromAuthDatabase(stack.databases[.auth]!)
            let jwks = try await TestHTTP.send(.GET, stack.url(.auth) + "/.well-known/jwks.json").body
            let cases: [(String, String?)] = [
                ("missing", nil),
                ("malformed", "not-a-jwt"),
                ("expired", try await forge.expired()),
                ("tampered", TokenForge.tampered(valid)),
                ("alg none", TokenForge.algNone(valid)),
                ("unknown kid", try await TokenForge.stranger().sign()),
                ("hmac with public key", try await TokenForge.hmacWithPublicKey(valid, jwks: jwks)),
            ]
            for (name, token) in cases {
                let response = try await TestHTTP.send(.GET, stack.url(.auth) + "/api/auth/me", headers: token.map(Fixtures.bearer) ?? [:])
                #expect(response.status == 401, "\(name)")
                #expect((try? response.error().detail.isEmpty) == false, "\(name)")
            }
            let expired = try await TestHTTP.send(.GET, stack.url(.auth) + "/api/auth/me", headers: Fixtures.bearer(try await forge.expired()))
            #expect(try expired.error().code == "TOKEN_EXPIRED")
            // A correctly signed token for a user that does not exist is refused too.
            let ghost = try await TestHTTP.send(.GET, stack.url(.auth) + "/api/auth/me", headers: Fixtures.bearer(try await forge.sign()))
            #expect(ghost.status == 401)
            #expect(try await TestHTTP.send(.GET, stack.url(.auth) + "/api/auth/me", headers: Fixtures.bearer(valid)).status == 200)
        }
    }

    @Test func routingErrorsUseTheErrorBody() async throws {
        try await TestStack.with(.auth) { stack in
            let unknown = try await TestHTTP.send(.GET, stack.url(.auth) + "/api/auth/nothing-here")
            #expect(unknown.status == 404)
            #expect(try unknown.error().code == "NOT_FOUND")
            let wrongMethod = try await TestHTTP.send(.GET, stack.url(.auth) + "/api/auth/login")
            #expect(wrongMethod.status == 405)
            #expect(try wrongMethod.error().code == "METHOD_NOT_ALLOWED")
            #expect(wrongMethod.header("Allow") == "POST")
            let ready = try await TestHTTP.send(.GET, stack.url(.auth) + "/ready")
            #expect(ready.status == 200)
            let metrics = try await TestHTTP.send(.GET, stack.url(.auth) + "/metrics")
            #expect(metrics.status == 200)
            #expect(metrics.text.contains("http_requests_total"))
            #expect(metrics.text.contains(#"status="405""#))
            let requestID = try await TestHTTP.send(.GET, stack.url(.auth) + "/live", headers: ["X-Request-ID": "abc-123"])
            #expect(requestID.header("X-Request-ID") == "abc-123")
        }
    }
}
