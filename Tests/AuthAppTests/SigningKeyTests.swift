import Foundation
import HTTPTypes
import JWTKit
import Logging
import NIOHTTP1
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

@testable import AuthApp

/// Signing keys over their life — pending, active, retiring, gone — against auth's real table, with
/// time moved by writing rows with past and future timestamps rather than by waiting.
@Suite("auth signing keys")
struct SigningKeyTests {
    static let logger = Logger(label: "signing-key-tests")

    /// A migrated auth database, its key repository, and an issuer over it (tokens for 60 s, keys
    /// published 2 s ahead: retention 62 s).
    static func withStore<T: Sendable>(
        _ body: @Sendable (DatabaseConfig, Database, PostgresSigningKeyRepository, TokenIssuer) async throws -> T
    ) async throws -> T {
        let config = try await TestPostgres.freshDatabase("keys")
        return try await TestPostgres.withDatabase(config) { database in
            try await MigrationRunner(AuthMigrations.all).run(on: database.client, logger: logger)
            let repository = PostgresSigningKeyRepository(client: database)
            let issuer = TokenIssuer(lifetimeSeconds: 60, source: .database(repository), activationDelay: .seconds(2))
            return try await body(config, database, repository, issuer)
        }
    }

    /// Writes a key row with the given times, in seconds from now.
    @discardableResult
    static func insertKey(_ database: Database, activates: Double, retired: Double?) async throws -> String {
        let key = try PostgresSigningKeyRepository.newKey()
        try await database.query(
            """
            INSERT INTO signing_keys (kid, private_key_pem, created_at, activates_at, retired_at)
            VALUES (\(key.kid), \(key.pem), now() + \(activates - 60) * interval '1 second', now() + \(activates) * interval '1 second',
                    now() + \(retired) * interval '1 second')
            """,
            logger: logger
        )
        return key.kid
    }

    static func claims() -> AccessTokenClaims {
        AccessTokenClaims(userID: UUID(), tenantID: UUID(), email: "a@example.com", role: .owner, issuedAt: Date(), lifetime: 60)
    }

    @Test func theNewestActivatedKeySigns() {
        let now = Date()
        let old = TokenIssuer.Signer(kid: "old", activatesAt: now.addingTimeInterval(-3_600))
        let current = TokenIssuer.Signer(kid: "current", activatesAt: now.addingTimeInterval(-10))
        let next = TokenIssuer.Signer(kid: "next", activatesAt: now.addingTimeInterval(30))
        #expect(TokenIssuer.signingKeyID(among: [next, old, current], at: now) == "current")
        #expect(TokenIssuer.signingKeyID(among: [next, old, current], at: now.addingTimeInterval(30)) == "next")
        #expect(TokenIssuer.signingKeyID(among: [old], at: now) == "old")
        // A replica whose clock is behind the database's at the first start still signs.
        #expect(TokenIssuer.signingKeyID(among: [next], at: now) == "next")
        #expect(TokenIssuer.signingKeyID(among: [], at: now) == nil)
    }

    @Test func theJWKSFollowsEachKeyFromPendingToGone() async throws {
        try await Self.withStore { config, database, repository, issuer in
            // Retention is 62 s after retirement.
            let gone = try await Self.insertKey(database, activates: -500, retired: -100)
            let retiring = try await Self.insertKey(database, activates: -100, retired: -10)
            let active = try await Self.insertKey(database, activates: -10, retired: 30)
            let pending = try await Self.insertKey(database, activates: 30, retired: nil)
            try await issuer.load(logger: Self.logger)

            let published = try await issuer.fetchJWKS().keys.compactMap { $0.keyIdentifier?.string }
            #expect(Set(published) == [retiring, active, pending])
            #expect(try TokenForge.keyID(of: try await issuer.issue(Self.claims())) == active)
            let states = try await repository.published(retention: issuer.retention, logger: Self.logger).map { ($0.kid, $0.state(at: Date())) }
            #expect(states.map(\.0) == [retiring, active, pending])
            #expect(states.map(\.1) == [.retiring, .active, .pending])

            // Pruning deletes the key whose tokens have all expired, private half and all, and nothing else.
            #expect(try await repository.prune(retention: issuer.retention, logger: Self.logger) == 1)
            #expect(try await TestPostgres.count(config, "SELECT count(*)::int FROM signing_keys WHERE kid = \(gone)") == 0)
            #expect(try await TestPostgres.count(config, "SELECT count(*)::int FROM signing_keys") == 3)

            // Time passes: the pending key's moment comes, and the oldest retiring key's retention ends.
            try await database.query(
                """
                UPDATE signing_keys SET
                    activates_at = CASE WHEN kid = \(pending) THEN now() - interval '1 second' ELSE activates_at END,
                    retired_at = CASE WHEN kid = \(active) THEN now() - interval '1 second'
                                      WHEN kid = \(retiring) THEN now() - interval '63 seconds' ELSE retired_at END
                """,
                logger: Self.logger
            )
            try await issuer.reload(logger: Self.logger)
            #expect(try TokenForge.keyID(of: try await issuer.issue(Self.claims())) == pending)
            #expect(Set(try await issuer.fetchJWKS().keys.compactMap { $0.keyIdentifier?.string }) == [active, pending])
            #expect(try await repository.prune(retention: issuer.retention, logger: Self.logger) == 1)
        }
    }

    @Test func rotationsAreSerialisedAndOneAtATime() async throws {
        try await Self.withStore { config, database, repository, issuer in
            try await issuer.load(logger: Self.logger)
            let first = try #require(try await issuer.fetchJWKS().keys.first?.keyIdentifier?.string)
            // Two operators at once: one rotation, one 409, never two pending keys.
            let outcomes = await withTaskGroup(of: Result<SigningKeyRotation, any Error>.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        do { return .success(try await repository.rotate(delay: .seconds(60), logger: Self.logger)) } catch { return .failure(error) }
                    }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
            let rotations = outcomes.compactMap { try? $0.get() }
            #expect(rotations.count == 1)
            let refusals = outcomes.compactMap { outcome -> AppError? in
                if case .failure(let error) = outcome { return error as? AppError }
                return nil
            }
            #expect(refusals.count == 3 && refusals.allSatisfy { $0.status == .conflict && $0.code == "ROTATION_PENDING" })
            let rotation = try #require(rotations.first)
            #expect(rotation.retiringKid == first)
            #expect(rotation.activatesAt.timeIntervalSince(rotation.createdAt) >= 60)
            #expect(rotation.activatesAt.timeIntervalSince(rotation.createdAt) <= 62)
            #expect(try await TestPostgres.count(config, "SELECT count(*)::int FROM signing_keys WHERE activates_at > now()") == 1)
            #expect(
                try await TestPostgres.count(
                    config, "SELECT count(*)::int FROM signing_keys WHERE kid = \(first) AND retired_at = \(rotation.activatesAt)"
                ) == 1
            )
            // Published at once, signing only later.
            try await issuer.reload(logger: Self.logger)
            #expect(Set(try await issuer.fetchJWKS().keys.compactMap { $0.keyIdentifier?.string }) == [first, rotation.kid])
            #expect(try TokenForge.keyID(of: try await issuer.issue(Self.claims())) == first)
            // A restart finds the keys and makes none.
            try await repository.ensureKey(logger: Self.logger)
            #expect(try await TestPostgres.count(config, "SELECT count(*)::int FROM signing_keys") == 2)
        }
    }

    @Test func aReplicaThatHasNotReloadedVerifiesAnotherReplicasNewKey() async throws {
        try await Self.withStore { config, database, repository, issuer in
            try await issuer.load(logger: Self.logger)
            // Another replica on the same database, with its own verifier reading the table on an unknown kid.
            let replica = TokenIssuer(lifetimeSeconds: 60, source: .database(repository), activationDelay: .seconds(2))
            try await replica.load(logger: Self.logger)
            let verifier = AccessTokenVerifier(source: replica.reloadingSource(logger: Self.logger), minimumRefreshInterval: .seconds(1), logger: Self.logger)
            let before = try await issuer.issue(Self.claims())
            #expect(try await verifier.verify(before).role == .owner)

            // The first replica rotates, and the new key's moment comes before the replica reloaded.
            let rotation = try await repository.rotate(delay: .seconds(60), logger: Self.logger)
            try await database.query(
                "UPDATE signing_keys SET activates_at = now() - interval '1 second' WHERE kid = \(rotation.kid)", logger: Self.logger
            )
            try await database.query(
                """
                UPDATE signing_keys SET retired_at = now() - interval '1 second', activates_at = now() - interval '1 hour'
                WHERE kid <> \(rotation.kid)
                """,
                logger: Self.logger
            )
            try await issuer.reload(logger: Self.logger)
            let after = try await issuer.issue(Self.claims())
            #expect(try TokenForge.keyID(of: after) == rotation.kid)
            try await Task.sleep(for: .milliseconds(1_100))
            #expect(try await verifier.verify(after).role == .owner)
            // …which also made it sign with the new key, and the old token still verifies.
            #expect(try TokenForge.keyID(of: try await replica.issue(Self.claims())) == rotation.kid)
            #expect(try await verifier.verify(before).role == .owner)
        }
    }

    @Test func onlyASuperAdminSeesAndRotatesKeys() async throws {
        let email = Fixtures.uniqueEmail("root")
        let password = "R00t-of-all"
        let overrides = ["SUPER_ADMIN_EMAIL": email, "SUPER_ADMIN_PASSWORD": password, "SIGNING_KEY_ACTIVATION_DELAY_SECONDS": "30"]
        try await TestStack.with(.auth, overrides: overrides) { stack in
            let list = stack.url(.auth) + "/api/auth/signing-keys"
            let rotate = stack.url(.auth) + "/api/auth/signing-keys/rotate"
            let tenant = try await UserManagementTests.tenant(stack)
            let admin = try await UserManagementTests.add(stack, to: tenant, role: .admin)
            for member in [tenant.owner, admin] {
                for (method, url) in [(HTTPMethod.GET, list), (.POST, rotate)] {
                    let refused = try await TestHTTP.send(method, url, headers: Fixtures.bearer(member.token))
                    #expect(refused.status == 403)
                    #expect(try refused.error().code == "ROLE_NOT_ALLOWED")
                }
            }
            #expect(try await TestHTTP.send(.POST, rotate).status == 401)
            #expect(try await TestHTTP.send(.GET, list).status == 401)
            #expect(try await TestPostgres.count(stack.databases[.auth]!, "SELECT count(*)::int FROM signing_keys") == 1)

            let root = try await UserManagementTests.login(stack, email, password)
            struct Key: Decodable { var kid: String; var state: String; var activatesAt: Date?; var retiredAt: Date?; var publishedUntil: Date? }
            struct KeyList: Decodable { var source: String; var keys: [Key] }
            let initial = try await TestHTTP.send(.GET, list, headers: Fixtures.bearer(root.token))
            #expect(initial.status == 200)
            #expect(!initial.text.contains("PRIVATE"))
            let before = try initial.json(KeyList.self)
            #expect(before.source == "database" && before.keys.map(\.state) == ["active"])
            let first = try #require(before.keys.first?.kid)

            let rotated = try await TestHTTP.send(.POST, rotate, headers: Fixtures.bearer(root.token))
            #expect(rotated.status == 200)
            struct Rotated: Decodable { var kid: String; var activatesAt: Date; var retiringKid: String?; var retiringPublishedUntil: Date? }
            let rotation = try rotated.json(Rotated.self)
            #expect(rotation.retiringKid == first)
            #expect(rotation.activatesAt.timeIntervalSinceNow > 25 && rotation.activatesAt.timeIntervalSinceNow < 35)
            // Token lifetime (86400) + activation delay (30) after the switch.
            #expect(rotation.retiringPublishedUntil == rotation.activatesAt.addingTimeInterval(86_430))

            let again = try await TestHTTP.send(.POST, rotate, headers: Fixtures.bearer(root.token))
            #expect(again.status == 409)
            #expect(try again.error().code == "ROTATION_PENDING")

            let during = try await TestHTTP.send(.GET, list, headers: Fixtures.bearer(root.token)).json(KeyList.self)
            #expect(during.keys.map(\.kid) == [rotation.kid, first])
            #expect(during.keys.map(\.state) == ["pending", "active"])
            #expect(during.keys.last?.retiredAt == rotation.activatesAt)
            let jwks = try await TestHTTP.send(.GET, stack.url(.auth) + "/.well-known/jwks.json")
            #expect(jwks.header("Cache-Control") == "public, max-age=60")
            #expect(jwks.text.contains(rotation.kid) && jwks.text.contains(first))
            // Until the moment, the old key signs.
            let fresh = try await UserManagementTests.login(stack, email, password)
            #expect(try TokenForge.keyID(of: fresh.token) == first)
        }
    }

    @Test func aConfiguredKeyIsNotRotatedHereButCanPublishOthers() async throws {
        let email = Fixtures.uniqueEmail("root")
        let password = "R00t-of-all"
        let signing = ES256PrivateKey()
        let next = ES256PrivateKey()
        let previous = ES256PrivateKey()
        let overrides = [
            "SUPER_ADMIN_EMAIL": email, "SUPER_ADMIN_PASSWORD": password, "JWT_SIGNING_KEY": signing.pemRepresentation,
            // Two blocks in one variable, with the `\n` escapes some platforms need.
            "JWT_ADDITIONAL_PUBLIC_KEYS": (next.publicKey.pemRepresentation + "\n" + previous.publicKey.pemRepresentation)
                .replacingOccurrences(of: "\n", with: "\\n"),
        ]
        try await TestStack.with(.auth, overrides: overrides) { stack in
            let root = try await UserManagementTests.login(stack, email, password)
            let kids = try [signing.publicKey, next.publicKey, previous.publicKey].map { try TokenIssuer.keyID(of: $0) }
            #expect(try TokenForge.keyID(of: root.token) == kids[0])
            let rotated = try await TestHTTP.send(.POST, stack.url(.auth) + "/api/auth/signing-keys/rotate", headers: Fixtures.bearer(root.token))
            #expect(rotated.status == 409)
            #expect(try rotated.error().code == "SIGNING_KEY_CONFIGURED")
            let listed = try await TestHTTP.send(.GET, stack.url(.auth) + "/api/auth/signing-keys", headers: Fixtures.bearer(root.token))
            #expect(listed.status == 200)
            struct Key: Decodable { var kid: String; var state: String }
            struct KeyList: Decodable { var source: String; var keys: [Key] }
            let list = try listed.json(KeyList.self)
            #expect(list.source == "configuration")
            #expect(list.keys.map(\.kid) == kids && list.keys.map(\.state) == ["active", "published", "published"])
            let jwks = try await TestHTTP.send(.GET, stack.url(.auth) + "/.well-known/jwks.json").text
            #expect(kids.allSatisfy { jwks.contains($0) })
            #expect(try await TestPostgres.count(stack.databases[.auth]!, "SELECT count(*)::int FROM signing_keys") == 0)
        }
    }

    @Test func additionalPublicKeysAreCheckedAtStart() {
        let settings = { (extra: [String: String]) in SignupTests.settings(extra) }
        let publicKey = ES256PrivateKey().publicKey.pemRepresentation
        #expect(throws: ConfigurationError.self) { try AuthConfig(settings: settings(["JWT_ADDITIONAL_PUBLIC_KEYS": publicKey])) }
        let signing = ES256PrivateKey().pemRepresentation
        #expect(throws: ConfigurationError.self) {
            try AuthConfig(settings: settings(["JWT_SIGNING_KEY": signing, "JWT_ADDITIONAL_PUBLIC_KEYS": "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----"]))
        }
        #expect(throws: ConfigurationError.self) { try AuthConfig(settings: settings(["SIGNING_KEY_ACTIVATION_DELAY_SECONDS": "0"])) }
        #expect((try? AuthConfig(settings: settings(["JWT_SIGNING_KEY": signing, "JWT_ADDITIONAL_PUBLIC_KEYS": publicKey])))?.additionalPublicKeyPEMs.count == 1)
    }
}
