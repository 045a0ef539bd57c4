import Crypto
import Foundation
import HTTPTypes
import InternalAPI
import Logging
import NIOHTTP1
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

@testable import TenancyApp

/// `POST /api/onboarding/register` with an `Idempotency-Key`, against the real auth, billing and
/// tenancy, checked in all three databases.
@Suite("tenancy idempotent registration")
struct IdempotentRegistrationTests {
    /// The fingerprint key of the tenancy the stack runs (derived from its SERVICE_KEY).
    static func fingerprintKey() throws -> SymmetricKey {
        try RegistrationRequests.fingerprintKey(servicePrivateKeyPEM: TestStack.serviceKeys[.tenancy]!.privateKeyPEM)
    }

    typealias Footprint = RegistrationTests.Footprint

    static func footprint(_ stack: TestStack) async throws -> Footprint { try await RegistrationTests.footprint(stack) }

    static func register(_ stack: TestStack, key: String?, _ body: [String: String]) async throws -> TestResponse {
        try await TestHTTP.send(
            .POST, stack.url(.tenancy) + "/api/onboarding/register", headers: key.map { ["Idempotency-Key": $0] } ?? [:], json: body
        )
    }

    static func body(email: String = Fixtures.uniqueEmail(), accountName: String = "Retry Shop") -> [String: String] {
        ["email": email, "password": Fixtures.password, "account_name": accountName]
    }

    @Test func aRetryAnswersTheFirstResultAndCreatesNothing() async throws {
        try await TestStack.with(.auth, .billing, .tenancy) { stack in
            let key = "reg-\(UUID())"
            let body = Self.body()
            let first = try await Self.register(stack, key: key, body)
            #expect(first.status == 201)
            let registered = try first.json(Fixtures.Registered.self)

            // Same body, another key order and spacing: the same request.
            let again = try await TestHTTP.send(
                .POST, stack.url(.tenancy) + "/api/onboarding/register", headers: ["Idempotency-Key": key],
                body: #"{ "account_name": "Retry Shop", "password": "\#(Fixtures.password)", "email": "\#(body["email"]!.uppercased())" }"#
            )
            #expect(again.status == 201)
            let replayed = try again.json(Fixtures.Registered.self)
            #expect(replayed.tenantId == registered.tenantId)
            #expect(replayed.userId == registered.userId)
            #expect(replayed.tenantSlug == registered.tenantSlug)
            #expect(replayed.email == registered.email)
            #expect(replayed.accountName == registered.accountName)
            #expect(replayed.trialEndsAt == registered.trialEndsAt)
            // Fresh tokens of a second session of the same owner, both usable.
            #expect(replayed.refreshToken != registered.refreshToken)
            for token in [registered.accessToken, replayed.accessToken] {
                #expect(try await TestHTTP.send(.GET, stack.url(.auth) + "/api/auth/me", headers: Fixtures.bearer(token)).status == 200)
            }
            #expect(try await Self.footprint(stack) == Footprint(tenants: 1, users: 1, subscriptions: 1))

            // The key's row holds a fingerprint and the answer without secrets: no password, no token.
            let leaks = try await TestPostgres.count(
                stack.databases[.tenancy]!,
                """
                SELECT count(*)::int FROM registration_requests
                WHERE response_body::text LIKE \("%" + Fixtures.password + "%") OR response_body::text LIKE '%token%'
                   OR response_body::text LIKE \("%" + registered.accessToken.prefix(20) + "%")
                """
            )
            #expect(leaks == 0)
            let stored = try await TestPostgres.count(
                stack.databases[.tenancy]!,
                "SELECT count(*)::int FROM registration_requests WHERE idempotency_key = \(key) AND state = 'completed' AND length(fingerprint) = 32"
            )
            #expect(stored == 1)
        }
    }

    @Test func theKeyWithAnotherBodyIs422AndChangesNothing() async throws {
        try await TestStack.with(.auth, .billing, .tenancy) { stack in
            let key = "reg-\(UUID())"
            #expect(try await Self.register(stack, key: key, Self.body()).status == 201)
            let before = try await Self.footprint(stack)
            for other in [Self.body(), ["email": Fixtures.uniqueEmail(), "password": "Another1Passw0rd"]] {
                let reused = try await Self.register(stack, key: key, other)
                #expect(reused.status == 422)
                #expect(try reused.error().code == "IDEMPOTENCY_KEY_REUSED")
            }
            #expect(try await Self.footprint(stack) == before)
        }
    }

    @Test func badKeysAre400AndChangeNothing() async throws {
        try await TestStack.with(.auth, .billing, .tenancy) { stack in
            for key in [String(repeating: "k", count: 256), "tab\there", "café"] {
                let response = try await Self.register(stack, key: key, Self.body())
                #expect(response.status == 400, "\(key.debugDescription)")
                #expect(try response.error().code == "INVALID_IDEMPOTENCY_KEY")
            }
            // The longest and the oddest printable keys are fine.
            #expect(try await Self.register(stack, key: String(repeating: "k", count: 255), Self.body()).status == 201)
            #expect(try await Self.register(stack, key: #"a b~!"#, Self.body()).status == 201)
            #expect(try await Self.footprint(stack) == Footprint(tenants: 2, users: 2, subscriptions: 2))
            #expect(try await TestPostgres.count(stack.databases[.tenancy]!, "SELECT count(*)::int FROM registration_requests") == 2)
        }
    }

    @Test func concurrentDuplicatesCreateOneTenant() async throws {
        try await TestStack.with(.auth, .billing, .tenancy) { stack in
            let key = "reg-\(UUID())"
            let body = Self.body()
            let responses = try await withThrowingTaskGroup(of: TestResponse.self) { group in
                for _ in 0..<8 { group.addTask { try await Self.register(stack, key: key, body) } }
                return try await group.reduce(into: [TestResponse]()) { $0.append($1) }
            }
            let created = responses.filter { $0.status == 201 }
            let waiting = responses.filter { $0.status == 409 }
            #expect(created.count >= 1)
            #expect(created.count + waiting.count == 8, "\(responses.map(\.status))")
            #expect(Set(try created.map { try $0.json(Fixtures.Registered.self).tenantId }).count == 1)
            for response in waiting {
                #expect(try response.error().code == "IDEMPOTENCY_IN_PROGRESS")
                #expect(response.header("Retry-After") == "1")
            }
            #expect(try await Self.footprint(stack) == Footprint(tenants: 1, users: 1, subscriptions: 1))
            // Once the first is done, a retry answers its result.
            let retry = try await Self.register(stack, key: key, body)
            #expect(retry.status == 201)
            #expect(try retry.json(Fixtures.Registered.self).tenantId == created[0].json(Fixtures.Registered.self).tenantId)
        }
    }

    @Test func aRefusalIsReplayedAndATransientFailureFreesTheKey() async throws {
        try await TestStack.with(.auth, .billing, .tenancy) { stack in
            // auth's verdict on the password is final: replayed as it was.
            let weakKey = "weak-\(UUID())"
            let weak = ["email": Fixtures.uniqueEmail(), "password": "short"]
            let refused = try await Self.register(stack, key: weakKey, weak)
            #expect(refused.status == 422)
            let replayed = try await Self.register(stack, key: weakKey, weak)
            #expect(replayed.status == 422)
            #expect(try replayed.error().code == refused.error().code)
            #expect(try replayed.error().fields == refused.error().fields)

            // billing down: 503, nothing left, and the same key works once billing is back.
            let key = "later-\(UUID())"
            let body = Self.body()
            await stack.stop(.billing)
            #expect(try await Self.register(stack, key: key, body).status == 503)
            #expect(try await Self.footprint(stack) == Footprint(tenants: 0, users: 0, subscriptions: 0))
            try await stack.start(.billing)
            #expect(try await Self.register(stack, key: key, body).status == 201)
            #expect(try await Self.footprint(stack) == Footprint(tenants: 1, users: 1, subscriptions: 1))
        }
    }

    @Test func aKeyInProgressIs409UntilAbandoned() async throws {
        try await TestStack.with(.auth, .billing, .tenancy) { stack in
            let key = "stuck-\(UUID())"
            let body = Self.body()
            let input = try OnboardingController.validated(
                .init(email: body["email"]!, password: body["password"]!, accountName: body["account_name"], fullName: nil)
            )
            // Keyed as the running tenancy keys it (its SERVICE_KEY).
            let fingerprint = RegistrationRequests.fingerprint(input, key: try Self.fingerprintKey())
            _ = try await TestPostgres.withClient(stack.databases[.tenancy]!) { client in
                try await client.query(
                    """
                    INSERT INTO registration_requests (idempotency_key, fingerprint, registration_id, state, expires_at)
                    VALUES (\(key), \(fingerprint), \(UUID()), 'in_progress', now() + interval '1 day')
                    """
                )
            }
            let busy = try await Self.register(stack, key: key, body)
            #expect(busy.status == 409)
            #expect(try busy.error().code == "IDEMPOTENCY_IN_PROGRESS")
            #expect(try await Self.footprint(stack) == Footprint(tenants: 0, users: 0, subscriptions: 0))

            // Older than any registration takes (ABANDONED_REGISTRATION_SECONDS, 300): a retry takes it over.
            _ = try await TestPostgres.withClient(stack.databases[.tenancy]!) { client in
                try await client.query("UPDATE registration_requests SET created_at = now() - interval '10 minutes' WHERE idempotency_key = \(key)")
            }
            #expect(try await Self.register(stack, key: key, body).status == 201)
            #expect(try await Self.footprint(stack) == Footprint(tenants: 1, users: 1, subscriptions: 1))
        }
    }

    @Test func expiredKeysCountAsNewAndArePruned() async throws {
        try await TestStack.with(.auth, .billing, .tenancy) { stack in
            let key = "old-\(UUID())"
            let first = try await Self.register(stack, key: key, Self.body())
            #expect(first.status == 201)
            _ = try await TestPostgres.withClient(stack.databases[.tenancy]!) { client in
                try await client.query("UPDATE registration_requests SET expires_at = now() - interval '1 second' WHERE idempotency_key = \(key)")
            }
            // Expired: another body is no reuse, it is a new registration.
            let second = try await Self.register(stack, key: key, Self.body(accountName: "Second Shop"))
            #expect(second.status == 201)
            #expect(try second.json(Fixtures.Registered.self).tenantId != first.json(Fixtures.Registered.self).tenantId)
            #expect(try await Self.footprint(stack) == Footprint(tenants: 2, users: 2, subscriptions: 2))

            _ = try await TestPostgres.withClient(stack.databases[.tenancy]!) { client in
                try await client.query(
                    """
                    INSERT INTO registration_requests (idempotency_key, fingerprint, registration_id, state, expires_at)
                    VALUES ('gone', '\\x00'::bytea, \(UUID()), 'in_progress', now() - interval '1 hour')
                    """
                )
            }
            let removed = try await TestPostgres.withDatabase(stack.databases[.tenancy]!) { database in
                try await RegistrationRequests(
                    client: database, lifetime: .seconds(86_400), abandonedAfter: .seconds(300), fingerprintKey: try Self.fingerprintKey()
                ).prune(logger: Logger(label: "test"))
            }
            #expect(removed == 1)
            #expect(try await TestPostgres.count(stack.databases[.tenancy]!, "SELECT count(*)::int FROM registration_requests") == 1)
        }
    }

    @Test func withoutAKeyRegistrationIsAsBefore() async throws {
        try await TestStack.with(.auth, .billing, .tenancy) { stack in
            let body = Self.body()
            #expect(try await Self.register(stack, key: nil, body).status == 201)
            let again = try await Self.register(stack, key: nil, body)
            #expect(again.status == 409)
            #expect(try again.error().code == "EMAIL_TAKEN")
            #expect(try await TestPostgres.count(stack.databases[.tenancy]!, "SELECT count(*)::int FROM registration_requests") == 0)
        }
    }
}
