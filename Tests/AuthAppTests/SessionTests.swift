import Foundation
import HTTPTypes
import InternalAPI
import JWTKit
import NIOHTTP1
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

@testable import AuthApp

/// Refresh-token families, logout and the revocation feed, over real HTTP against auth's own database.
@Suite("auth sessions")
struct SessionTests {
    struct Tokens: Decodable {
        var accessToken: String
        var refreshToken: String
        var userId: String
        var role: String
        var expiresIn: Int
    }

    struct Signed: Sendable {
        var email: String
        var tokens: Tokens
    }

    /// An owner, signed in once (a session of its own besides the one owner creation started).
    static func signedIn(_ stack: TestStack, email: String = Fixtures.uniqueEmail()) async throws -> Signed {
        let created = try await Fixtures.createOwner(authURL: stack.url(.auth), email: email)
        #expect(created.status == 201)
        #expect(try created.json(CreatedOwner.self).refreshToken.hasPrefix("rt_"))
        let login = try await TestHTTP.send(.POST, stack.url(.auth) + "/api/auth/login", json: ["email": email, "password": Fixtures.password])
        #expect(login.status == 200)
        return Signed(email: email, tokens: try login.json(Tokens.self))
    }

    static func refresh(_ stack: TestStack, _ token: String) async throws -> TestResponse {
        try await TestHTTP.send(.POST, stack.url(.auth) + "/api/auth/refresh", json: ["refresh_token": token])
    }

    static func claims(_ token: String) throws -> AccessTokenClaims {
        let payload = token.split(separator: ".")[1]
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .secondsSince1970
        return try decoder.decode(AccessTokenClaims.self, from: Data(base64URLEncoded: payload)!)
    }

    static func sessionState(_ stack: TestStack, _ sessionID: String) async throws -> (tokens: Int, rotated: Int, revoked: Int) {
        let database = stack.databases[.auth]!
        let id = UUID(uuidString: sessionID)!
        return (
            try await TestPostgres.count(database, "SELECT count(*)::int FROM refresh_tokens WHERE session_id = \(id)"),
            try await TestPostgres.count(database, "SELECT count(*)::int FROM refresh_tokens WHERE session_id = \(id) AND rotated_at IS NOT NULL"),
            try await TestPostgres.count(database, "SELECT count(*)::int FROM auth_sessions WHERE id = \(id) AND revoked_at IS NOT NULL")
        )
    }

    @Test func refreshRotatesAndTheOldTokenRepeatsItsSuccessorWithinTheInterval() async throws {
        try await TestStack.with(.auth) { stack in
            let signed = try await Self.signedIn(stack)
            let first = try Self.claims(signed.tokens.accessToken)
            let sid = try #require(first.sid)
            #expect(first.ver == 0)

            let refreshed = try await Self.refresh(stack, signed.tokens.refreshToken)
            #expect(refreshed.status == 200)
            let next = try refreshed.json(Tokens.self)
            #expect(next.refreshToken != signed.tokens.refreshToken)
            #expect(next.refreshToken.hasPrefix("rt_"))
            #expect(next.userId == signed.tokens.userId && next.role == "owner" && next.expiresIn == 86_400)
            #expect(try Self.claims(next.accessToken).sid == sid)

            // Presented again at once (a second tab): the same successor, no fork.
            let again = try await Self.refresh(stack, signed.tokens.refreshToken)
            #expect(again.status == 200)
            #expect(try again.json(Tokens.self).refreshToken == next.refreshToken)
            // The successor works, and the chain goes on.
            let third = try await Self.refresh(stack, next.refreshToken)
            #expect(third.status == 200)
            let state = try await Self.sessionState(stack, sid)
            #expect(state.tokens == 3 && state.rotated == 2 && state.revoked == 0)
            // Only hashes are stored; the successor is kept sealed, never in the clear.
            let hashed = try await TestPostgres.count(
                stack.databases[.auth]!, "SELECT count(*)::int FROM refresh_tokens WHERE token_hash = sha256(\(Data(next.refreshToken.utf8)))"
            )
            #expect(hashed == 1)
            let clear = try await TestPostgres.count(
                stack.databases[.auth]!,
                "SELECT count(*)::int FROM refresh_tokens WHERE position(\(Data(next.refreshToken.utf8)) in successor_sealed) > 0"
            )
            #expect(clear == 0)
            #expect(try await Self.me(stack, third.json(Tokens.self).accessToken).status == 200)
        }
    }

    @Test func concurrentRefreshesOfOneTokenNeverForkTheFamily() async throws {
        try await TestStack.with(.auth) { stack in
            let signed = try await Self.signedIn(stack)
            let answers = try await withThrowingTaskGroup(of: TestResponse.self) { group in
                for _ in 0..<8 { group.addTask { try await Self.refresh(stack, signed.tokens.refreshToken) } }
                return try await group.reduce(into: [TestResponse]()) { $0.append($1) }
            }
            #expect(answers.allSatisfy { $0.status == 200 })
            let successors = Set(try answers.map { try $0.json(Tokens.self).refreshToken })
            #expect(successors.count == 1)
            let state = try await Self.sessionState(stack, try #require(Self.claims(signed.tokens.accessToken).sid))
            #expect(state.tokens == 2 && state.rotated == 1 && state.revoked == 0)
        }
    }

    @Test func aTokenReusedAfterTheIntervalEndsTheWholeFamily() async throws {
        try await TestStack.with(.auth, overrides: ["REFRESH_REUSE_INTERVAL_SECONDS": "0"]) { stack in
            let signed = try await Self.signedIn(stack)
            let sid = try #require(Self.claims(signed.tokens.accessToken).sid)
            let next = try await Self.refresh(stack, signed.tokens.refreshToken).json(Tokens.self)
            try await Task.sleep(for: .milliseconds(50))

            let replayed = try await Self.refresh(stack, signed.tokens.refreshToken)
            #expect(replayed.status == 401)
            #expect(try replayed.error().code == "REFRESH_TOKEN_REUSED")
            // The thief's copy and the owner's are both dead now.
            let successor = try await Self.refresh(stack, next.refreshToken)
            #expect(successor.status == 401)
            #expect(try successor.error().code == "INVALID_REFRESH_TOKEN")
            #expect(try await Self.sessionState(stack, sid).revoked == 1)
            let published = try await TestPostgres.count(
                stack.databases[.auth]!,
                "SELECT count(*)::int FROM revocations WHERE kind = 'session' AND subject = \(UUID(uuidString: sid)!) AND reason = 'refresh_token_reused'"
            )
            #expect(published == 1)
        }
    }

    @Test func badRefreshRequests() async throws {
        try await TestStack.with(.auth) { stack in
            let url = stack.url(.auth) + "/api/auth/refresh"
            let malformed = try await TestHTTP.send(.POST, url, body: "{not json")
            #expect(malformed.status == 400)
            let missing = try await TestHTTP.send(.POST, url, json: [String: String]())
            #expect(missing.status == 422)
            let empty = try await Self.refresh(stack, "")
            #expect(empty.status == 422)
            #expect(try empty.error().fields?["refresh_token"] != nil)
            let wrongType = try await TestHTTP.send(.POST, url, body: #"{"refresh_token": 5}"#)
            #expect(wrongType.status == 422)
            for bogus in ["rt_short", "not-a-token", String(repeating: "a", count: 10_000), "rt_" + String(repeating: "A", count: 43)] {
                let answer = try await Self.refresh(stack, bogus)
                #expect(answer.status == 401, "\(bogus.prefix(20))")
                #expect(try answer.error().code == "INVALID_REFRESH_TOKEN")
            }
            // An access token is not a refresh token.
            let signed = try await Self.signedIn(stack)
            #expect(try await Self.refresh(stack, signed.tokens.accessToken).status == 401)

            // An expired one is refused, and changes nothing.
            let sid = try #require(Self.claims(signed.tokens.accessToken).sid)
            _ = try await TestPostgres.count(
                stack.databases[.auth]!,
                "WITH u AS (UPDATE refresh_tokens SET expires_at = now() - interval '1 second' WHERE session_id = \(UUID(uuidString: sid)!) RETURNING 1) SELECT count(*)::int FROM u"
            )
            let expired = try await Self.refresh(stack, signed.tokens.refreshToken)
            #expect(expired.status == 401)
            #expect(try expired.error().code == "INVALID_REFRESH_TOKEN")
            let state = try await Self.sessionState(stack, sid)
            #expect(state.tokens == 1 && state.rotated == 0 && state.revoked == 0)
        }
    }

    static func me(_ stack: TestStack, _ accessToken: String) async throws -> TestResponse {
        try await TestHTTP.send(.GET, stack.url(.auth) + "/api/auth/me", headers: Fixtures.bearer(accessToken))
    }

    @Test func logoutEndsTheSessionAndPublishesIt() async throws {
        try await TestStack.with(.auth) { stack in
            let signed = try await Self.signedIn(stack)
            let other = try await TestHTTP.send(.POST, stack.url(.auth) + "/api/auth/login", json: ["email": signed.email, "password": Fixtures.password])
                .json(Tokens.self)
            let logout = try await TestHTTP.send(.POST, stack.url(.auth) + "/api/auth/logout", headers: Fixtures.bearer(signed.tokens.accessToken))
            #expect(logout.status == 200)
            #expect(logout.text.contains(#""sessions_ended":1"#))
            let refused = try await Self.refresh(stack, signed.tokens.refreshToken)
            #expect(refused.status == 401)
            let sid = try #require(Self.claims(signed.tokens.accessToken).sid)
            #expect(try await Self.sessionState(stack, sid).revoked == 1)
            #expect(
                try await TestPostgres.count(
                    stack.databases[.auth]!, "SELECT count(*)::int FROM revocations WHERE kind = 'session' AND subject = \(UUID(uuidString: sid)!)"
                ) == 1
            )
            // The other session goes on; logging out twice is harmless.
            #expect(try await Self.refresh(stack, other.refreshToken).status == 200)
            let twice = try await TestHTTP.send(.POST, stack.url(.auth) + "/api/auth/logout", headers: Fixtures.bearer(signed.tokens.accessToken))
            #expect(twice.status == 200)
            #expect(twice.text.contains(#""sessions_ended":0"#))
            // Without a token: 401, nothing changed.
            let anonymous = try await TestHTTP.send(.POST, stack.url(.auth) + "/api/auth/logout")
            #expect(anonymous.status == 401)
        }
    }

    @Test func logoutEverywhereVoidsEveryTokenOfTheUser() async throws {
        try await TestStack.with(.auth) { stack in
            let signed = try await Self.signedIn(stack)
            let other = try await TestHTTP.send(.POST, stack.url(.auth) + "/api/auth/login", json: ["email": signed.email, "password": Fixtures.password])
                .json(Tokens.self)
            let all = try await TestHTTP.send(.POST, stack.url(.auth) + "/api/auth/logout-all", headers: Fixtures.bearer(other.accessToken))
            #expect(all.status == 200)
            // Owner creation, the first login and the second: three sessions.
            #expect(all.text.contains(#""sessions_ended":3"#))
            #expect(try await Self.refresh(stack, signed.tokens.refreshToken).status == 401)
            #expect(try await Self.refresh(stack, other.refreshToken).status == 401)
            let old = try await Self.me(stack, signed.tokens.accessToken)
            #expect(old.status == 401)
            #expect(try old.error().code == "TOKEN_REVOKED")
            let user = UUID(uuidString: signed.tokens.userId)!
            #expect(try await TestPostgres.count(stack.databases[.auth]!, "SELECT token_version FROM users WHERE id = \(user)") == 1)
            #expect(
                try await TestPostgres.count(
                    stack.databases[.auth]!, "SELECT min_token_version FROM revocations WHERE kind = 'user' AND subject = \(user)"
                ) == 1
            )
            // Signing in again works, with the new version.
            let fresh = try await TestHTTP.send(.POST, stack.url(.auth) + "/api/auth/login", json: ["email": signed.email, "password": Fixtures.password])
                .json(Tokens.self)
            #expect(try Self.claims(fresh.accessToken).ver == 1)
            #expect(try await Self.me(stack, fresh.accessToken).status == 200)
        }
    }

    @Test func theRevocationFeedAnswersTheGatewayAloneAndPages() async throws {
        try await TestStack.with(.auth) { stack in
            let feed = stack.url(.auth) + "/internal/gateway/revocations"
            for _ in 0..<2 {
                let signed = try await Self.signedIn(stack)
                #expect(try await TestHTTP.send(.POST, stack.url(.auth) + "/api/auth/logout", headers: Fixtures.bearer(signed.tokens.accessToken)).status == 200)
            }
            // tenancy calls auth, but not this route; a key that is not the gateway's; the gateway's token for another service.
            let tenancy = try await TestStack.callInternal(.get, feed, callee: .auth, as: .tenancy)
            #expect(tenancy.status == 401)
            #expect(try tenancy.error().code == "CALLER_NOT_ALLOWED")
            let stranger = try await CallerIdentity(name: "gateway", privateKeyPEM: CallerIdentity.makeKeyPair().privateKeyPEM)
            let forged = try await stranger.token(for: "auth", method: .get, target: "/internal/gateway/revocations")
            #expect(try await TestHTTP.send(.GET, feed, headers: ["X-Caller-Token": forged]).status == 401)
            #expect(try await TestHTTP.send(.GET, feed, headers: try await TestStack.callerHeaders(as: .gateway, to: .tenancy, .get, feed)).status == 401)

            let get = { (url: String) in try await TestStack.callInternal(.get, url, callee: .auth, as: .gateway) }
            let all = try await get(feed).json(RevocationPage.self)
            #expect(all.revocations.count == 2 && all.next == nil)
            #expect(all.revocations.allSatisfy { $0.kind == .session && $0.expiresAt > Date() })
            let first = try await get(feed + "?limit=1").json(RevocationPage.self)
            let cursor = try #require(first.next)
            let after = cursor.after.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            let second = try await get(feed + "?limit=1&changed_since=\(cursor.changedSince)&after=\(after)").json(RevocationPage.self)
            #expect(second.revocations.count == 1)
            #expect(second.revocations.first?.subject != first.revocations.first?.subject)
            for bad in ["limit=0", "limit=5000", "changed_since=-1", "changed_since=abc", "after=nonsense"] {
                let response = try await get(feed + "?" + bad)
                #expect(response.status == 422, "\(bad): \(response.status)")
            }
        }
    }

    @Test func sealedSuccessorsOpenOnlyWithTheirToken() throws {
        let token = RefreshToken.generate()
        let successor = RefreshToken.generate()
        let sealed = try token.seal(successor)
        #expect(token.unseal(sealed) == successor)
        #expect(RefreshToken.generate().unseal(sealed) == nil)
        #expect(token.unseal(Data("garbage".utf8)) == nil)
        #expect(RefreshToken.parse(token.value) == token)
        #expect(token.hash.count == 32)
    }
}
