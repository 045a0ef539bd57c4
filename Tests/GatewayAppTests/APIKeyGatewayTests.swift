import Foundation
import HTTPTypes
import InternalAPI
import JWTKit
import Logging
import NIOCore
import NIOHTTP1
import ServiceCore
import Synchronization
import TestSupport
import Testing

@testable import GatewayApp

/// API keys through the gateway: sent as `Authorization: Bearer sk_…` or `X-API-Key`, exchanged
/// with auth once and cached, forwarded as an ordinary access token, and refused within seconds
/// once revoked.
@Suite("api keys at the gateway", .timeLimit(.minutes(3)))
struct APIKeyGatewayTests {
    /// Limits no test comes near: polling for a change must not be what refuses a request.
    static let overrides = ["RATE_LIMIT_TENANT_PER_MINUTE": "1000", "RATE_LIMIT_PUBLIC_PER_MINUTE": "1000"]

    struct Login: Decodable {
        var userId: String
        var accessToken: String
    }

    struct Created: Decodable {
        var id: String
        var secret: String
        var role: String
    }

    /// A new owner of `tenant`, signed in through the gateway.
    static func owner(_ stack: TestStack, tenant: UUID = UUID()) async throws -> Login {
        let email = Fixtures.uniqueEmail()
        #expect(try await Fixtures.createOwner(authURL: stack.url(.auth), tenantID: tenant, email: email).status == 201)
        let answer = try await TestHTTP.send(.POST, stack.url(.gateway) + "/api/auth/login", json: ["email": email, "password": Fixtures.password])
        #expect(answer.status == 200)
        return try answer.json(Login.self)
    }

    static func makeKey(_ stack: TestStack, by owner: Login, name: String = "Integration") async throws -> Created {
        let answer = try await TestHTTP.send(
            .POST, stack.url(.gateway) + "/api/auth/api-keys", headers: Fixtures.bearer(owner.accessToken), json: ["name": name]
        )
        #expect(answer.status == 201, "\(answer.text)")
        #expect(answer.header("Cache-Control") == "no-store")
        return try answer.json(Created.self)
    }

    @Test func aKeyReachesServicesAsAnAccessToken() async throws {
        try await TestStack.with(.auth, .gateway, overrides: Self.overrides) { stack in
            let owner = try await Self.owner(stack)
            let key = try await Self.makeKey(stack, by: owner)
            let me = stack.url(.gateway) + "/api/auth/me"
            struct Me: Decodable { var userId: String; var role: String }

            // auth answers only access tokens: a 200 means the gateway sent one in the key's place.
            for headers in [Fixtures.bearer(key.secret), ["Authorization": "bearer \(key.secret)"], ["X-API-Key": key.secret]] {
                let answer = try await TestHTTP.send(.GET, me, headers: headers)
                #expect(answer.status == 200, "\(headers.keys): \(answer.text)")
                #expect(try answer.json(Me.self).userId == owner.userId)
                #expect(answer.header("RateLimit-Policy")?.contains("\"tenant\"") == true)
            }
            // An access token wins over an `X-API-Key` sent with it.
            let both = try await TestHTTP.send(.GET, me, headers: ["Authorization": "Bearer \(owner.accessToken)", "X-API-Key": "sk_live_nonsense"])
            #expect(both.status == 200)
            // A route that asks for no credential still works with one.
            #expect(try await TestHTTP.send(.GET, stack.url(.gateway) + "/.well-known/jwks.json", headers: Fixtures.bearer(key.secret)).status == 200)

            // Unknown or malformed keys: 401, asking for a bearer credential.
            for unknown in [APIKeyFormat.prefix + String(repeating: "Q", count: 43), "sk_nope", "sk_live_" + String(key.secret.dropFirst(9))] {
                for headers in [Fixtures.bearer(unknown), ["X-API-Key": unknown]] {
                    let refused = try await TestHTTP.send(.GET, me, headers: headers)
                    #expect(refused.status == 401, "\(unknown)")
                    #expect(try refused.error().code == "INVALID_API_KEY")
                    #expect(refused.header("WWW-Authenticate") == "Bearer")
                }
            }

            // Keys are made from a session, not with a key.
            let child = try await TestHTTP.send(
                .POST, stack.url(.gateway) + "/api/auth/api-keys", headers: ["X-API-Key": key.secret], json: ["name": "Child"]
            )
            #expect(child.status == 403)
            #expect(try child.error().code == "API_KEY_NOT_ALLOWED")
            // Listing through the gateway never shows a secret.
            let listed = try await TestHTTP.send(.GET, stack.url(.gateway) + "/api/auth/api-keys", headers: Fixtures.bearer(owner.accessToken))
            #expect(listed.status == 200 && listed.text.contains(key.id) && !listed.text.contains(key.secret))
        }
    }

    @Test func aRevokedKeyStopsAtTheGatewayWithinFiveSeconds() async throws {
        try await TestStack.with(.auth, .gateway, overrides: Self.overrides) { stack in
            let owner = try await Self.owner(stack)
            let key = try await Self.makeKey(stack, by: owner)
            let other = try await Self.makeKey(stack, by: owner, name: "Other")
            let me = stack.url(.gateway) + "/api/auth/me"
            // In use, so the gateway holds a token for it.
            for _ in 0..<3 { #expect(try await TestHTTP.send(.GET, me, headers: Fixtures.bearer(key.secret)).status == 200) }

            let revoked = try await TestHTTP.send(
                .DELETE, stack.url(.gateway) + "/api/auth/api-keys/\(key.id)", headers: Fixtures.bearer(owner.accessToken)
            )
            #expect(revoked.status == 204)
            let stopped = try await TenantPolicyTests.within(10) {
                try await TestHTTP.send(.GET, me, headers: Fixtures.bearer(key.secret)).status == 401
            }
            #expect(stopped != nil && stopped! < 5, "revoking took \(stopped.map { "\($0) s" } ?? "over 10 s") to reach the gateway")
            for headers in [Fixtures.bearer(key.secret), ["X-API-Key": key.secret]] {
                let refused = try await TestHTTP.send(.GET, me, headers: headers)
                #expect(refused.status == 401)
                #expect(try refused.error().code == "API_KEY_REVOKED")
            }
            // The tenant's other key goes on.
            #expect(try await TestHTTP.send(.GET, me, headers: ["X-API-Key": other.secret]).status == 200)
        }
    }

    @Test func theMakersRoleAndDeletionReachTheKeyWithinSeconds() async throws {
        try await TestStack.with(.auth, .gateway, overrides: Self.overrides) { stack in
            let tenant = UUID()
            let first = try await Self.owner(stack, tenant: tenant)
            let second = try await Self.owner(stack, tenant: tenant)
            let key = try await Self.makeKey(stack, by: second)
            #expect(key.role == "owner")
            let users = stack.url(.gateway) + "/api/auth/users"
            #expect(try await TestHTTP.send(.GET, users, headers: Fixtures.bearer(key.secret)).status == 200)

            // Its maker demoted to user: the key's token is voided, the next one carries the lower role.
            let demote = try await TestHTTP.send(
                .PUT, stack.url(.gateway) + "/api/auth/users/\(second.userId)/role", headers: Fixtures.bearer(first.accessToken), json: ["role": "user"]
            )
            #expect(demote.status == 200)
            let lowered = try await TenantPolicyTests.within(10) {
                try await TestHTTP.send(.GET, users, headers: Fixtures.bearer(key.secret)).status == 403
            }
            #expect(lowered != nil && lowered! < 5, "the demotion took \(lowered.map { "\($0) s" } ?? "over 10 s") to reach the key")
            #expect(try await TestHTTP.send(.GET, stack.url(.gateway) + "/api/auth/me", headers: Fixtures.bearer(key.secret)).status == 200)

            // Its maker deleted: the key goes with them.
            let delete = try await TestHTTP.send(
                .DELETE, stack.url(.gateway) + "/api/auth/users/\(second.userId)", headers: Fixtures.bearer(first.accessToken)
            )
            #expect(delete.status == 204)
            let gone = try await TenantPolicyTests.within(10) {
                try await TestHTTP.send(.GET, stack.url(.gateway) + "/api/auth/me", headers: Fixtures.bearer(key.secret)).status == 401
            }
            #expect(gone != nil && gone! < 5, "the deletion took \(gone.map { "\($0) s" } ?? "over 10 s") to reach the key")
        }
    }

    @Test func withAuthDownAKnownKeyGoesOnAndANewOneIs503() async throws {
        try await TestStack.with(.auth, .billing, .gateway, overrides: Self.overrides) { stack in
            let owner = try await Self.owner(stack)
            let known = try await Self.makeKey(stack, by: owner)
            let fresh = try await Self.makeKey(stack, by: owner, name: "Fresh")
            let subscription = stack.url(.gateway) + "/api/payments/subscription"
            // billing answers the key's token (no subscription for this tenant: 404), and has auth's keys now.
            let before = try await TestHTTP.send(.GET, subscription, headers: Fixtures.bearer(known.secret))
            #expect(before.status == 404, "\(before.text)")

            await stack.stop(.auth)
            #expect(try await TestHTTP.send(.GET, subscription, headers: Fixtures.bearer(known.secret)).status == 404)
            let unavailable = try await TestHTTP.send(.GET, subscription, headers: ["X-API-Key": fresh.secret])
            #expect(unavailable.status == 503)
            #expect(try unavailable.error().code == "UPSTREAM_UNAVAILABLE")
        }
    }

    @Test func refusalsAreKeptBrieflyAndOneKeyIsAskedAboutOnceAtATime() async throws {
        let calls = Counter()
        let tokens = APIKeyTokens(
            exchange: { _ in
                calls.add()
                try await Task.sleep(for: .milliseconds(200))
                throw InternalCallError.rejected(service: "auth", status: 401, body: ErrorBody(detail: "This API key has been revoked", code: "API_KEY_REVOKED"))
            },
            verifier: AccessTokenVerifier(source: NoKeys(), logger: .init(label: "test")), refusalLife: .milliseconds(300)
        )
        let key = APIKeyFormat.prefix + String(repeating: "k", count: 43)
        let fingerprint = APIKeyTokens.fingerprint(key)
        #expect(tokens.cached(fingerprint) == nil)
        let answers = await withTaskGroup(of: APIKeyTokens.Answer.self) { group in
            for _ in 0..<20 { group.addTask { await tokens.answer(for: key, fingerprint: fingerprint) } }
            return await group.reduce(into: [APIKeyTokens.Answer]()) { $0.append($1) }
        }
        #expect(calls.value == 1)
        for answer in answers {
            guard case .refused(let error) = answer else { Issue.record("granted"); continue }
            #expect(error.status == .unauthorized && error.code == "API_KEY_REVOKED" && error.headers[.wwwAuthenticate] == "Bearer")
        }
        guard case .refused = tokens.cached(fingerprint) else { Issue.record("the refusal was not kept"); return }
        try await Task.sleep(for: .milliseconds(400))
        #expect(tokens.cached(fingerprint) == nil)

        // auth unreachable: 503, and asked again next time.
        let down = APIKeyTokens(
            exchange: { _ in
                calls.add()
                throw InternalCallError.notConnected(service: "auth", reason: "refused")
            },
            verifier: AccessTokenVerifier(source: NoKeys(), logger: .init(label: "test"))
        )
        guard case .refused(let error) = await down.answer(for: key, fingerprint: fingerprint) else { Issue.record("granted"); return }
        #expect(error.status == .serviceUnavailable && error.code == "UPSTREAM_UNAVAILABLE")
        #expect(down.cached(fingerprint) == nil && down.count == 0)
    }

    @Test func servicesAreSentTheKeysTokenAndNeverTheKey() throws {
        let head = RequestHead.lines(
            .GET, "/api/auth/me", [("Authorization", "Bearer sk_live_secret"), ("X-API-Key", "sk_live_other"), ("Accept", "application/json")]
        )
        let upstream = try UpstreamAddress(Upstream(name: .auth, baseURL: "http://127.0.0.1:1"))
        let sent = { (authorization: Admission.UpstreamAuthorization) in
            let (bytes, _) = ForwardedHeaders.writeRequest(
                head, target: "/api/auth/me", upstream: upstream, requestID: "r", peer: "127.0.0.1", peerIsTrusted: false, bodyLength: 0,
                authorization: authorization, hasAPIKeyHeader: head.facts.apiKey != nil,
                allocator: ByteBufferAllocator()
            )
            // The header lines written, as `HTTPHeaders`.
            let lines = String(buffer: bytes).components(separatedBy: "\r\n").dropFirst().filter { !$0.isEmpty }
            return HTTPHeaders(lines.map { line in
                let colon = line.firstIndex(of: ":")!
                return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
            })
        }
        let replaced = sent(.replaced("Bearer eyJ.token"))
        #expect(replaced["authorization"] == ["Bearer eyJ.token"] && replaced["x-api-key"].isEmpty && replaced["accept"] == ["application/json"])
        let removed = sent(.removed)
        #expect(removed["authorization"].isEmpty && removed["x-api-key"].isEmpty)
        // An access token sent with an `X-API-Key` goes on as it is; the key does not.
        #expect(sent(.asSent)["authorization"] == ["Bearer sk_live_secret"] && sent(.asSent)["x-api-key"].isEmpty)
        #expect(Admission.isBearerAPIKey("Bearer sk_live_x") && Admission.isBearerAPIKey("BEARER  sk_x"))
        #expect(!Admission.isBearerAPIKey("Bearer eyJhbGciOiJFUzI1NiJ9") && !Admission.isBearerAPIKey("Basic sk_live_x"))
    }
}

/// A JWKS source with no keys, for caches that never get as far as verifying.
private struct NoKeys: JWKSSource {
    func fetchJWKS() async throws -> JWKS { JWKS(keys: []) }
}

private final class Counter: Sendable {
    private let calls = Mutex(0)
    func add() { calls.withLock { $0 += 1 } }
    var value: Int { calls.withLock { $0 } }
}
