import Foundation
import InternalAPI
import NIOHTTP1
import ServiceCore
import TestSupport
import Testing

@testable import GatewayApp

/// Logouts reach the gateway from auth's revocation feed: a logged-out access token stops working
/// there within seconds, with no call to auth per request.
@Suite("revocation at the gateway", .timeLimit(.minutes(3)))
struct RevocationTests {
    struct Login: Decodable {
        var accessToken: String
        var refreshToken: String
    }

    static func login(_ stack: TestStack, _ email: String) async throws -> Login {
        let answer = try await TestHTTP.send(
            .POST, stack.url(.gateway) + "/api/auth/login", json: ["email": email, "password": Fixtures.password]
        )
        #expect(answer.status == 200)
        return try answer.json(Login.self)
    }

    @Test func aConnectionThatSentATokenBeforeIsRefusedOnceItIsRevoked() async throws {
        // A connection remembers the token it sent last (so the same header skips the token cache);
        // what it remembers is checked again on every request, and only for that exact header.
        try await TestStack.with(.auth, .gateway) { stack in
            let email = Fixtures.uniqueEmail()
            #expect(try await Fixtures.createOwner(authURL: stack.url(.auth), email: email).status == 201)
            let session = try await Self.login(stack, email)
            let other = try await Self.login(stack, email)
            let client = try RawConnection.connect(port: stack.ports[.gateway]!)
            defer { client.close() }
            @Sendable func me(_ token: String) async throws -> (status: Int, code: String?) {
                try await RawTCP.run {
                    client.send("GET /api/auth/me HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer \(token)\r\n\r\n")
                    guard let answer = client.readResponse() else { return (0, nil) }
                    let code = answer.body.split(separator: "\"").drop { $0 != "code" }.dropFirst(2).first.map(String.init)
                    return (answer.status, code)
                }
            }
            #expect(try await me(session.accessToken).status == 200)
            #expect(try await me(session.accessToken).status == 200)
            #expect(try await me(TokenForge.tampered(session.accessToken)).status == 401)
            #expect(try await me(session.accessToken).status == 200)

            let logout = try await TestHTTP.send(.POST, stack.url(.gateway) + "/api/auth/logout", headers: Fixtures.bearer(session.accessToken))
            #expect(logout.status == 200)
            let stopped = try await Polling.within(10) { try await me(session.accessToken).status == 401 }
            #expect(stopped != nil, "the revoked token still passed on the connection that had sent it")
            #expect(try await me(session.accessToken) == (401, "TOKEN_REVOKED"))
            // The same connection goes on with another live token, and back.
            #expect(try await me(other.accessToken).status == 200)
            #expect(try await me(session.accessToken).status == 401)
        }
    }

    @Test func aLoggedOutTokenStopsAtTheGatewayWithinFiveSeconds() async throws {
        try await TestStack.with(.auth, .gateway) { stack in
            let email = Fixtures.uniqueEmail()
            #expect(try await Fixtures.createOwner(authURL: stack.url(.auth), email: email).status == 201)
            let me = stack.url(.gateway) + "/api/auth/me"
            let session = try await Self.login(stack, email)
            let other = try await Self.login(stack, email)
            #expect(try await TestHTTP.send(.GET, me, headers: Fixtures.bearer(session.accessToken)).status == 200)

            let logout = try await TestHTTP.send(.POST, stack.url(.gateway) + "/api/auth/logout", headers: Fixtures.bearer(session.accessToken))
            #expect(logout.status == 200)
            let stopped = try await TenantPolicyTests.within(10) {
                try await TestHTTP.send(.GET, me, headers: Fixtures.bearer(session.accessToken)).status == 401
            }
            #expect(stopped != nil && stopped! < 5, "logout took \(stopped.map { "\($0) s" } ?? "over 10 s") to reach the gateway")
            let refused = try await TestHTTP.send(.GET, me, headers: Fixtures.bearer(session.accessToken))
            // The gateway's refusal: auth itself would still answer this token (it only checks the user's version).
            #expect(try refused.error().code == "TOKEN_REVOKED")
            #expect(try await TestHTTP.send(.GET, stack.url(.auth) + "/api/auth/me", headers: Fixtures.bearer(session.accessToken)).status == 200)
            // The user's other session is untouched.
            #expect(try await TestHTTP.send(.GET, me, headers: Fixtures.bearer(other.accessToken)).status == 200)

            // Refreshing through the gateway: a new pair for the live session, 401 for the ended one.
            let refreshed = try await TestHTTP.send(.POST, stack.url(.gateway) + "/api/auth/refresh", json: ["refresh_token": other.refreshToken])
            #expect(refreshed.status == 200)
            #expect(refreshed.header("Cache-Control")?.contains("no-store") == true)
            let dead = try await TestHTTP.send(.POST, stack.url(.gateway) + "/api/auth/refresh", json: ["refresh_token": session.refreshToken])
            #expect(dead.status == 401)

            // Logging out everywhere voids the rest, the refreshed token included.
            let renewed = try refreshed.json(Login.self)
            let all = try await TestHTTP.send(.POST, stack.url(.gateway) + "/api/auth/logout-all", headers: Fixtures.bearer(renewed.accessToken))
            #expect(all.status == 200)
            let everywhere = try await TenantPolicyTests.within(10) {
                let answers = [
                    try await TestHTTP.send(.GET, me, headers: Fixtures.bearer(other.accessToken)),
                    try await TestHTTP.send(.GET, me, headers: Fixtures.bearer(renewed.accessToken)),
                ]
                return answers.allSatisfy { $0.status == 401 }
            }
            #expect(everywhere != nil && everywhere! < 5, "logout-all took \(everywhere.map { "\($0) s" } ?? "over 10 s")")
            // A new sign-in works at once.
            let fresh = try await Self.login(stack, email)
            #expect(try await TestHTTP.send(.GET, me, headers: Fixtures.bearer(fresh.accessToken)).status == 200)
        }
    }

    @Test func revocationsApplyAndExpire() {
        let revocations = Revocations()
        let user = UUID()
        let session = UUID()
        let claims = { (sid: UUID?, ver: Int?) in
            AccessTokenClaims(
                userID: user, tenantID: UUID(), email: "a@example.com", role: .user, issuedAt: Date(), lifetime: 60, sessionID: sid,
                tokenVersion: ver
            )
        }
        let later = Date().addingTimeInterval(3_600)
        revocations.apply([Revocation(kind: .session, subject: session.uuidString, minTokenVersion: nil, updatedAt: Date(), expiresAt: later)])
        #expect(revocations.voids(claims(session, 0)))
        #expect(!revocations.voids(claims(UUID(), 0)))
        revocations.apply([
            Revocation(kind: .user, subject: user.uuidString.lowercased(), minTokenVersion: 2, updatedAt: Date(), expiresAt: later),
            // An older entry arriving late never lowers the bar.
            Revocation(kind: .user, subject: user.uuidString.lowercased(), minTokenVersion: 1, updatedAt: Date(), expiresAt: later),
        ])
        #expect(revocations.voids(claims(nil, 1)))
        #expect(revocations.voids(claims(nil, nil)))
        #expect(!revocations.voids(claims(nil, 2)))
        // Entries past their expiry are never kept.
        revocations.apply(
            [Revocation(kind: .session, subject: UUID().uuidString, minTokenVersion: nil, updatedAt: Date(), expiresAt: Date().addingTimeInterval(-1))]
        )
        #expect(revocations.count == 2)
    }
}
