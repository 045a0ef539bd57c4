import Foundation
import NIOHTTP1
import ServiceCore
import TestSupport
import Testing

/// A signing-key rotation through the gateway, with two auth replicas on one database: tokens
/// issued before it keep working at the gateway and at every service, before and after the new
/// key takes over, and tokens issued after it carry the new key and work everywhere too.
@Suite("signing key rotation", .timeLimit(.minutes(3)))
struct SigningKeyRotationTests {
    struct Login: Decodable { var accessToken: String }
    struct Rotated: Decodable { var kid: String; var activatesAt: Date; var retiringKid: String? }

    static func login(_ baseURL: String, _ email: String, _ password: String) async throws -> String {
        let answer = try await TestHTTP.send(.POST, baseURL + "/api/auth/login", json: ["email": email, "password": password])
        #expect(answer.status == 200, "login at \(baseURL): \(answer.text)")
        return try answer.json(Login.self).accessToken
    }

    /// The routes, one per service, that a token must open through the gateway; the failures, if any.
    static func refusals(_ stack: TestStack, _ token: String) async throws -> [String] {
        var refused: [String] = []
        for path in ["/api/auth/me", "/api/onboarding/status", "/api/payments/subscription"] {
            let answer = try await TestHTTP.send(.GET, stack.url(.gateway) + path, headers: Fixtures.bearer(token))
            if answer.status != 200 { refused.append("\(path): \(answer.status) \(answer.text)") }
        }
        return refused
    }

    @Test func tokensFromBeforeARotationKeepWorkingEverywhere() async throws {
        let email = Fixtures.uniqueEmail("root")
        let password = "R00t-of-all"
        let overrides = [
            "SUPER_ADMIN_EMAIL": email, "SUPER_ADMIN_PASSWORD": password,
            // Replicas reload every 0.75 s; the gateway and the services poll the JWKS every second.
            "SIGNING_KEY_ACTIVATION_DELAY_SECONDS": "3", "JWKS_REFRESH_SECONDS": "1",
        ]
        try await TestStack.with(.auth, .billing, .tenancy, .gateway, overrides: overrides) { stack in
            // A second auth replica on the same database, which nobody tells about the rotation.
            let replica = try await stack.startReplica(of: .auth)
            do {
                try await Self.rotate(stack, replica: replica.url, root: (email, password))
            } catch {
                await replica.runner.stop()
                throw error
            }
            await replica.runner.stop()
        }
    }

    static func rotate(_ stack: TestStack, replica: String, root: (email: String, password: String)) async throws {
        let gateway = stack.url(.gateway)
        let registered = try await Fixtures.register(at: gateway)
        let before = registered.accessToken
        let fromReplicaBefore = try await login(replica, registered.email, Fixtures.password)
        let oldKid = try TokenForge.keyID(of: before)
        #expect(try TokenForge.keyID(of: fromReplicaBefore) == oldKid)
        #expect(try await refusals(stack, before).isEmpty)

        let rootToken = try await login(gateway, root.email, root.password)
        let answer = try await TestHTTP.send(.POST, gateway + "/api/auth/signing-keys/rotate", headers: Fixtures.bearer(rootToken))
        #expect(answer.status == 200, "rotate: \(answer.text)")
        let rotation = try answer.json(Rotated.self)
        #expect(rotation.retiringKid == oldKid && rotation.kid != oldKid)

        // Published at once, by the replica too once it has reloaded; signing still with the old key.
        let jwks = try await TestHTTP.send(.GET, gateway + "/.well-known/jwks.json").text
        #expect(jwks.contains(rotation.kid) && jwks.contains(oldKid))
        let replicaPublishes = try await TenantPolicyTests.within(2) {
            try await TestHTTP.send(.GET, replica + "/.well-known/jwks.json").text.contains(rotation.kid)
        }
        #expect(replicaPublishes != nil, "the replica did not publish the new key within 2 s")
        if Date() < rotation.activatesAt.addingTimeInterval(-0.5) {
            #expect(try TokenForge.keyID(of: try await login(gateway, registered.email, Fixtures.password)) == oldKid)
        }
        #expect(try await refusals(stack, before).isEmpty)

        // The moment passes: both replicas sign with the new key, neither having been told.
        let wait = rotation.activatesAt.timeIntervalSinceNow + 0.2
        if wait > 0 { try await Task.sleep(for: .milliseconds(Int(wait * 1_000))) }
        let after = try await login(gateway, registered.email, Fixtures.password)
        let fromReplicaAfter = try await login(replica, registered.email, Fixtures.password)
        #expect(try TokenForge.keyID(of: after) == rotation.kid)
        #expect(try TokenForge.keyID(of: fromReplicaAfter) == rotation.kid)

        // Every token, old or new, from either replica, opens auth, tenancy and billing through the gateway.
        for token in [before, fromReplicaBefore, after, fromReplicaAfter] {
            let (refused, tokenKid) = (try await refusals(stack, token), try TokenForge.keyID(of: token))
            #expect(refused.isEmpty, "kid \(tokenKid): \(refused)")
        }
        // Each replica verifies the other's new tokens, and the old ones.
        for (url, token) in [(stack.url(.auth), fromReplicaAfter), (replica, after), (replica, before)] {
            #expect(try await TestHTTP.send(.GET, url + "/api/auth/me", headers: Fixtures.bearer(token)).status == 200)
        }
        let listed = try await TestHTTP.send(.GET, replica + "/api/auth/signing-keys", headers: Fixtures.bearer(rootToken)).text
        #expect(listed.contains(#""state":"active""#) && listed.contains(#""state":"retiring""#) && !listed.contains("pending"))
    }
}
