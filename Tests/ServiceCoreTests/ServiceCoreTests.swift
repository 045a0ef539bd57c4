import Foundation
import HTTPTypes
import JWTKit
import Logging
import PostgresNIO
import ServiceCore
import Synchronization
import TestSupport
import Testing

@Suite("configuration")
struct ConfigurationTests {
    @Test func missingAndMalformedValuesNameTheVariable() throws {
        let missing = Settings.variables([:])
        #expect(throws: ConfigurationError.self) { try CommonConfig(settings: missing, defaultPort: 1) }
        do {
            _ = try CommonConfig(settings: missing, defaultPort: 1)
        } catch let error as ConfigurationError {
            #expect(error.variable == "DATABASE_URL")
            #expect(error.description.contains("DATABASE_URL"))
        }
        let key = TestStack.serviceKeys[.auth]!.privateKeyPEM
        let badPort = Settings.variables(["HTTP_PORT": "eighty", "DATABASE_URL": "postgres://u@h/db", "SERVICE_KEY": key])
        #expect { try CommonConfig(settings: badPort, defaultPort: 1) } throws: { ($0 as? ConfigurationError)?.variable == "HTTP_PORT" }
        let noKey = Settings.variables(["DATABASE_URL": "postgres://u@h/db"])
        #expect { try CommonConfig(settings: noKey, defaultPort: 1) } throws: { ($0 as? ConfigurationError)?.variable == "SERVICE_KEY" }
        let notPEM = Settings.variables(["DATABASE_URL": "postgres://u@h/db", "SERVICE_KEY": key, "TENANCY_PUBLIC_KEY": "secret"])
        #expect { try CommonConfig(settings: notPEM, defaultPort: 1) } throws: { ($0 as? ConfigurationError)?.variable == "TENANCY_PUBLIC_KEY" }
        let escaped = Settings.variables(
            ["DATABASE_URL": "postgres://u@h/db", "SERVICE_KEY": key.replacingOccurrences(of: "\n", with: "\\n"), "CHAT_PUBLIC_KEY": TestStack.serviceKeys[.chat]!.publicKeyPEM]
        )
        let parsed = try CommonConfig(settings: escaped, defaultPort: 1)
        #expect(parsed.serviceKeyPEM == key && parsed.callerPublicKeys.keys.sorted() == ["chat"])
        let badURL = Settings.variables(["DATABASE_URL": "mysql://x", "SERVICE_KEY": key])
        #expect { try CommonConfig(settings: badURL, defaultPort: 1) } throws: { ($0 as? ConfigurationError)?.variable == "DATABASE_URL" }
        let badLevel = Settings.variables(["LOG_LEVEL": "loud"])
        #expect { try ServerConfig(settings: badLevel, defaultPort: 1) } throws: { ($0 as? ConfigurationError)?.variable == "LOG_LEVEL" }
    }

    @Test func databaseURLsAreParsed() throws {
        let config = try DatabaseConfig(url: "postgres://app:p%40ss@db.internal:6543/billing")
        #expect(config.host == "db.internal")
        #expect(config.port == 6543)
        #expect(config.username == "app")
        #expect(config.password == "p@ss")
        #expect(config.database == "billing")
        #expect(throws: ConfigurationError.self) { try DatabaseConfig(url: "postgres://app@db.internal") }
    }
}

@Suite("errors and JSON")
struct ErrorMappingTests {
    struct Sample: Decodable {
        var accountName: String
        var count: Int
    }

    func mapped(_ json: String) -> AppError {
        do {
            _ = try JSONCoding.decoder.decode(Sample.self, from: Data(json.utf8))
            return .internalError("decoded")
        } catch let error as DecodingError {
            return JSONCoding.map(error)
        } catch {
            return .internalError()
        }
    }

    @Test func decodingFailuresBecome400Or422WithSnakeCaseFields() {
        #expect(mapped("{oops").status == .badRequest)
        #expect(mapped("{oops").code == "MALFORMED_JSON")
        #expect(mapped("[]").status == .badRequest)
        #expect(mapped("null").status == .badRequest)
        #expect(mapped("null").code == "MALFORMED_JSON")
        #expect(mapped(#"{"count": 1}"#).fields == ["account_name": ["is required"]])
        #expect(mapped(#"{"account_name": "a", "count": "x"}"#).fields == ["count": ["must be a number"]])
        #expect(mapped(#"{"account_name": null, "count": 1}"#).fields?["account_name"] != nil)
    }

    @Test func bearerTokensAreExtracted() {
        typealias Auth = JWTAuthMiddleware<AppRequestContext>
        #expect(Auth.bearerToken("Bearer abc.def.ghi") == "abc.def.ghi")
        #expect(Auth.bearerToken("bearer   abc  ") == "abc")
        #expect(Auth.bearerToken("BEARER x") == "x")
        #expect(Auth.bearerToken("Bearer ") == nil)
        #expect(Auth.bearerToken("Bearer    ") == nil)
        #expect(Auth.bearerToken("Basic abc") == nil)
        #expect(Auth.bearerToken("Bearerabc") == nil)
        #expect(Auth.bearerToken(nil) == nil)
        #expect(Auth.bearerToken("Beärer x") == nil)
    }

    @Test func requestIDsAreKeptOnlyWhenSane() {
        #expect(RequestID.acceptable("abc-123_x.y:z") == "abc-123_x.y:z")
        #expect(RequestID.acceptable("has space") == nil)
        #expect(RequestID.acceptable(String(repeating: "a", count: 200)) == nil)
        #expect(RequestID.acceptable("") == nil)
    }
}

@Suite("migrations")
struct MigrationTests {
    static let migrations = [
        Migration(1, "create_things", ["CREATE TABLE things (id integer PRIMARY KEY)"]),
        Migration(2, "seed_things", ["INSERT INTO things VALUES (1), (2)"]),
    ]

    @Test func replicasStartingTogetherApplyEachMigrationOnce() async throws {
        let database = try await TestPostgres.freshDatabase("migrations")
        try await TestPostgres.withClient(database) { client in
            let runner = MigrationRunner(Self.migrations)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<4 { group.addTask { try await runner.run(on: client, logger: Logger(label: "test")) } }
                try await group.waitForAll()
            }
            // And again later, as on every restart.
            try await runner.run(on: client, logger: Logger(label: "test"))
        }
        #expect(try await TestPostgres.count(database, "SELECT count(*)::int FROM things") == 2)
        #expect(try await TestPostgres.count(database, "SELECT count(*)::int FROM schema_migrations") == 2)
    }

    @Test func aFailingMigrationLeavesNoTrace() async throws {
        let database = try await TestPostgres.freshDatabase("migrations")
        let broken = Self.migrations + [Migration(3, "broken", ["CREATE TABLE more (id integer)", "SELECT * FROM missing_table"])]
        await #expect(throws: (any Error).self) {
            try await TestPostgres.withClient(database) { client in try await MigrationRunner(broken).run(on: client, logger: Logger(label: "test")) }
        }
        #expect(try await TestPostgres.count(database, "SELECT count(*)::int FROM schema_migrations") == 2)
        #expect(try await TestPostgres.count(database, "SELECT count(*)::int FROM information_schema.tables WHERE table_name = 'more'") == 0)
    }
}

/// A JWKS source the verifier can be pointed at: counts fetches and serves the keys it is given,
/// or fails while `failing` is set.
final class CountingJWKSSource: JWKSSource {
    let keys = Mutex<JWKS>(JWKS(keys: []))
    let fetches = Mutex(0)
    let failing = Mutex(false)

    func fetchJWKS() async throws -> JWKS {
        fetches.withLock { $0 += 1 }
        if failing.withLock({ $0 }) { throw AppError.unavailable("auth is down") }
        return keys.withLock { $0 }
    }

    func publish(_ key: ES256PrivateKey, kid: String) {
        publish([(key, kid)])
    }

    func publish(_ published: [(key: ES256PrivateKey, kid: String)]) {
        let jwks = published.map { key, kid in
            let parameters = key.parameters!
            return JWK.ecdsa(.es256, identifier: JWKIdentifier(string: kid), x: parameters.x, y: parameters.y, curve: .p256)
        }
        keys.withLock { $0 = JWKS(keys: jwks) }
    }
}

@Suite("access token verifier")
struct VerifierTests {
    func token(_ key: ES256PrivateKey, kid: String, lifetime: TimeInterval = 600) async throws -> String {
        let claims = AccessTokenClaims(userID: UUID(), tenantID: UUID(), email: "a@example.com", role: .admin, issuedAt: Date(), lifetime: lifetime)
        return try await JWTKeyCollection().add(ecdsa: key, kid: JWKIdentifier(string: kid)).sign(claims, kid: JWKIdentifier(string: kid))
    }

    @Test func unknownKidsTriggerAtMostOneFetchPerInterval() async throws {
        let source = CountingJWKSSource()
        let key = ES256PrivateKey()
        source.publish(key, kid: "k1")
        let verifier = AccessTokenVerifier(source: source, minimumRefreshInterval: .seconds(60), logger: Logger(label: "test"))
        let valid = try await token(key, kid: "k1")
        #expect(try await verifier.verify(valid).role == .admin)
        #expect(source.fetches.withLock { $0 } == 1)
        // A flood of tokens with made-up kids costs no further fetches inside the interval.
        for index in 0..<50 {
            await #expect(throws: AppError.self) { try await verifier.verify(try await token(ES256PrivateKey(), kid: "garbage-\(index)")) }
        }
        #expect(source.fetches.withLock { $0 } == 1)
    }

    @Test func aRotatedKeyIsPickedUpAfterTheInterval() async throws {
        let source = CountingJWKSSource()
        let old = ES256PrivateKey()
        source.publish(old, kid: "old")
        let verifier = AccessTokenVerifier(source: source, minimumRefreshInterval: .milliseconds(200), logger: Logger(label: "test"))
        _ = try await verifier.verify(try await token(old, kid: "old"))
        let new = ES256PrivateKey()
        source.publish(new, kid: "new")
        try await Task.sleep(for: .milliseconds(250))
        #expect(try await verifier.verify(try await token(new, kid: "new")).role == .admin)
        #expect(source.fetches.withLock { $0 } == 2)
    }

    @Test func aPollingVerifierLearnsKeysAheadAndKeepsThemWhenAPollFails() async throws {
        let source = CountingJWKSSource()
        let old = ES256PrivateKey()
        let new = ES256PrivateKey()
        source.publish(old, kid: "old")
        // The unknown-kid fetch is held off for the whole test: only the poll can teach it a key.
        let verifier = AccessTokenVerifier(
            source: source, minimumRefreshInterval: .seconds(3_600), refreshInterval: .milliseconds(100), logger: Logger(label: "test")
        )
        #expect(try await verifier.verify(try await token(old, kid: "old")).role == .admin)
        let polling = Task { try await verifier.run() }
        defer { polling.cancel() }
        // Until a whole poll has run since now: a second one has begun (a fixed pause is not enough on
        // a machine busy with every other test).
        func pause() async throws {
            let start = source.fetches.withLock { $0 }
            let deadline = ContinuousClock.now + .seconds(10)
            while source.fetches.withLock({ $0 }) < start + 2 {
                guard ContinuousClock.now < deadline else { throw TimeoutError() }
                try await Task.sleep(for: .milliseconds(20))
            }
        }

        // A key published ahead of use (a rotation) is known before its first token arrives.
        source.publish([(old, "old"), (new, "new")])
        try await pause()
        #expect(try await verifier.verify(try await token(new, kid: "new")).role == .admin)

        // A failed poll, and an answer with no key, keep the keys it had.
        source.failing.withLock { $0 = true }
        try await pause()
        #expect(try await verifier.verify(try await token(old, kid: "old")).role == .admin)
        source.failing.withLock { $0 = false }
        source.keys.withLock { $0 = JWKS(keys: []) }
        try await pause()
        #expect(try await verifier.verify(try await token(new, kid: "new")).role == .admin)

        // A key auth no longer publishes is dropped at the next poll.
        source.publish(new, kid: "new")
        try await pause()
        await #expect { try await verifier.verify(try await token(old, kid: "old")) } throws: { ($0 as? AppError)?.code == "INVALID_TOKEN" }
        #expect(try await verifier.verify(try await token(new, kid: "new")).role == .admin)
    }

    @Test func expiredAndWrongAlgorithmTokensAreRefused() async throws {
        let source = CountingJWKSSource()
        let key = ES256PrivateKey()
        source.publish(key, kid: "k1")
        let verifier = AccessTokenVerifier(source: source, logger: Logger(label: "test"))
        await #expect { try await verifier.verify(try await token(key, kid: "k1", lifetime: -10)) } throws: {
            ($0 as? AppError)?.code == "TOKEN_EXPIRED"
        }
        let valid = try await token(key, kid: "k1")
        await #expect { try await verifier.verify(TokenForge.algNone(valid)) } throws: { ($0 as? AppError)?.status == .unauthorized }
        await #expect { try await verifier.verify("a.b") } throws: { ($0 as? AppError)?.status == .unauthorized }
    }
}
