import Foundation
import HTTPTypes
import InternalAPI
import JWTKit
import Logging
import ServiceCore
import Testing

@testable import GatewayApp

/// A gateway that has just started knows no revocation until its first read of auth's feed: a
/// token it has never seen waits for that read, so a restart does not let a revoked token through.
@Suite("revocations after a gateway start")
struct RevocationCatchUpTests {
    struct OneKey: JWKSSource {
        let jwks: JWKS
        func fetchJWKS() async throws -> JWKS { jwks }
    }

    /// An admission with a verifier that trusts one fresh key, and a token of that key for session `sid`.
    static func setUp(_ revocations: Revocations, sid: UUID) async throws -> (Admission, Admission.Request) {
        let key = ES256PrivateKey()
        let parameters = try #require(key.parameters)
        let jwk = JWK.ecdsa(.es256, identifier: "k1", x: parameters.x, y: parameters.y, curve: .p256)
        let verifier = AccessTokenVerifier(source: OneKey(jwks: JWKS(keys: [jwk])), logger: Logger(label: "test"))
        let claims = AccessTokenClaims(
            userID: UUID(), tenantID: UUID(), email: "a@example.com", role: .owner, issuedAt: Date(), lifetime: 600, sessionID: sid
        )
        let token = try await JWTKeyCollection().add(ecdsa: key, kid: "k1").sign(claims, kid: "k1")
        let admission = Admission(verifier: verifier, limiter: RateLimiter(maxKeys: 100), limits: RateLimits(), revocations: revocations)
        let request = Admission.Request(method: .get, path: "/api/auth/me", sessionID: nil, authorization: "Bearer \(token)", clientKey: "127.0.0.1")
        return (admission, request)
    }

    @Test func aRevokedTokenWaitsForTheFirstReadAndIsRefused() async throws {
        let revocations = Revocations(catchUpWait: .seconds(10))
        let sid = UUID()
        let (admission, request) = try await Self.setUp(revocations, sid: sid)
        let started = ContinuousClock.now
        let outcome = Task { await admission.admit(request) }
        try await Task.sleep(for: .milliseconds(300))
        // The feed's first read arrives: it names this session.
        revocations.apply([
            Revocation(kind: .session, subject: sid.uuidString.lowercased(), minTokenVersion: nil, updatedAt: Date(), expiresAt: Date().addingTimeInterval(600))
        ])
        revocations.markCaughtUp()
        guard case .refuse(let error) = await outcome.value else { Issue.record("a revoked token went through"); return }
        #expect(error.code == "TOKEN_REVOKED")
        #expect(ContinuousClock.now - started >= .milliseconds(300))
    }

    @Test func onceCaughtUpNothingWaitsAndAnUnreachableFeedDelaysOnlyBriefly() async throws {
        let caughtUp = Revocations(catchUpWait: .seconds(10))
        caughtUp.markCaughtUp()
        let (admission, request) = try await Self.setUp(caughtUp, sid: UUID())
        let started = ContinuousClock.now
        guard case .forward = await admission.admit(request) else { Issue.record("a good token was refused"); return }
        #expect(ContinuousClock.now - started < .seconds(2))

        // auth down at start: tokens go on after the wait, unchecked until the first read (as before).
        let neverRead = Revocations(catchUpWait: .milliseconds(300))
        let (waiting, second) = try await Self.setUp(neverRead, sid: UUID())
        let began = ContinuousClock.now
        guard case .forward = await waiting.admit(second) else { Issue.record("a good token was refused"); return }
        #expect(ContinuousClock.now - began >= .milliseconds(300))
    }
}
