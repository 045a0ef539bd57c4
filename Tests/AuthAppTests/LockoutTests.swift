import Foundation
import NIOHTTP1
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

@testable import AuthApp

/// Brute-force protection: an email is locked after MAX_LOGIN_ATTEMPTS failures in a row, the same
/// way whether or not an account has it.
@Suite("auth lockout")
struct LockoutTests {
    static func login(_ stack: TestStack, _ email: String, _ password: String) async throws -> TestResponse {
        try await TestHTTP.send(.POST, stack.url(.auth) + "/api/auth/login", json: ["email": email, "password": password])
    }

    static func failures(_ stack: TestStack, _ email: String) async throws -> Int {
        try await TestPostgres.count(stack.databases[.auth]!, "SELECT COALESCE(max(failures), 0) FROM login_failures WHERE email = \(email)")
    }

    @Test func fiveFailuresLockTheAccountAndUnknownEmailsLookTheSame() async throws {
        try await TestStack.with(.auth) { stack in
            let email = Fixtures.uniqueEmail()
            #expect(try await Fixtures.createOwner(authURL: stack.url(.auth), email: email).status == 201)
            let unknown = Fixtures.uniqueEmail("nobody")
            for address in [email, unknown] {
                for attempt in 1...5 {
                    let answer = try await Self.login(stack, address, "Wrong-Passw0rd")
                    #expect(answer.status == 401, "\(address) attempt \(attempt)")
                }
            }
            // The sixth attempt is refused before any password check, even the right password.
            let locked = try await Self.login(stack, email.uppercased(), Fixtures.password)
            let lockedUnknown = try await Self.login(stack, unknown, Fixtures.password)
            #expect(locked.status == 429 && lockedUnknown.status == 429)
            #expect(try locked.error().code == "ACCOUNT_LOCKED")
            #expect(try locked.error().detail == lockedUnknown.error().detail)
            #expect(try locked.error().detail.contains("15 minutes"))
            let retryAfter = try #require(locked.header("Retry-After").flatMap(Int.init))
            #expect((890...900).contains(retryAfter))
            #expect(try await Self.failures(stack, email) == 6)
            #expect(
                try await TestPostgres.count(
                    stack.databases[.auth]!, "SELECT count(*)::int FROM login_failures WHERE email = \(email) AND locked_until > now() + interval '14 minutes'"
                ) == 1
            )
            // No session was started while locked.
            #expect(try await TestPostgres.count(stack.databases[.auth]!, "SELECT count(*)::int FROM auth_sessions") == 1)

            // When the lock runs out, the right password works and the count starts over.
            _ = try await TestPostgres.count(
                stack.databases[.auth]!,
                "WITH u AS (UPDATE login_failures SET locked_until = now() - interval '1 second' WHERE email = \(email) RETURNING 1) SELECT count(*)::int FROM u"
            )
            #expect(try await Self.login(stack, email, Fixtures.password).status == 200)
            #expect(try await Self.failures(stack, email) == 0)
        }
    }

    @Test func aSuccessStartsTheCountOver() async throws {
        try await TestStack.with(.auth) { stack in
            let email = Fixtures.uniqueEmail()
            #expect(try await Fixtures.createOwner(authURL: stack.url(.auth), email: email).status == 201)
            for _ in 1...4 {
                let wrong = try await Self.login(stack, email, "Wrong-Passw0rd")
                #expect(wrong.status == 401)
            }
            #expect(try await Self.login(stack, email, Fixtures.password).status == 200)
            for _ in 1...4 {
                let wrong = try await Self.login(stack, email, "Wrong-Passw0rd")
                #expect(wrong.status == 401)
            }
            #expect(try await Self.login(stack, email, Fixtures.password).status == 200)
        }
    }

    @Test func concurrentGuessesNeverCheckMoreThanTheLimit() async throws {
        try await TestStack.with(.auth, overrides: ["MAX_LOGIN_ATTEMPTS": "3", "LOCKOUT_DURATION_MINUTES": "1"]) { stack in
            let email = Fixtures.uniqueEmail()
            #expect(try await Fixtures.createOwner(authURL: stack.url(.auth), email: email).status == 201)
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<12 { group.addTask { Int(try await Self.login(stack, email, "Wrong-Passw0rd").status) } }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == 401 }.count == 3)
            #expect(statuses.filter { $0 == 429 }.count == 9)
            let locked = try await Self.login(stack, email, Fixtures.password)
            #expect(locked.status == 429)
            #expect(try #require(locked.header("Retry-After").flatMap(Int.init)) <= 60)
            #expect(try locked.error().detail.contains("1 minute."))
        }
    }
}
