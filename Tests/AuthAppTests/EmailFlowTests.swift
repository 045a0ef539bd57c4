import Foundation
import InternalAPI
import NIOHTTP1
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

@testable import AuthApp

/// Email verification and password reset: links mailed through the mail outbox, tokens stored
/// hashed and used once, and `auth.email_verified` delivered to tenancy through the event outbox.
@Suite("auth email flows", .timeLimit(.minutes(3)))
struct EmailFlowTests {
    /// The token in the newest queued mail to `email` whose link goes to `page`.
    static func mailedToken(_ stack: TestStack, to email: String, page: String) async throws -> String? {
        let rows = try await TestPostgres.withClient(stack.databases[.auth]!) { client in
            try await client.query("SELECT text_body FROM mail_outbox WHERE recipient = \(email) ORDER BY created_at DESC").collect()
        }
        for row in rows {
            let body = try row.decode(String.self)
            if let range = body.range(of: "/\(page)?token=") {
                return String(body[range.upperBound...].prefix { !$0.isWhitespace })
            }
        }
        return nil
    }

    static func mails(_ stack: TestStack, to email: String) async throws -> Int {
        try await TestPostgres.count(stack.databases[.auth]!, "SELECT count(*)::int FROM mail_outbox WHERE recipient = \(email)")
    }

    static func post(_ stack: TestStack, _ path: String, _ body: [String: String]) async throws -> TestResponse {
        try await TestHTTP.send(.POST, stack.url(.auth) + "/api/auth/" + path, json: body)
    }

    @Test func ownersAreMailedALinkThatVerifiesOnce() async throws {
        try await TestStack.with(.auth) { stack in
            let email = Fixtures.uniqueEmail()
            #expect(try await Fixtures.createOwner(authURL: stack.url(.auth), email: email).status == 201)
            let token = try #require(try await Self.mailedToken(stack, to: email, page: "verify-email"))
            // Only the hash is kept.
            #expect(
                try await TestPostgres.count(
                    stack.databases[.auth]!, "SELECT count(*)::int FROM email_tokens WHERE token_hash = sha256(\(Data(token.utf8))) AND purpose = 'verify_email'"
                ) == 1
            )
            // Another email than the token's: refused, and the token stays good.
            let wrongEmail = try await Self.post(stack, "verify-email", ["token": token, "email": "someone@example.com"])
            #expect(wrongEmail.status == 401)
            let verified = try await Self.post(stack, "verify-email", ["token": token, "email": email.uppercased()])
            #expect(verified.status == 200)
            #expect(verified.text.contains(#""email_verified":true"#))
            #expect(try await TestPostgres.count(stack.databases[.auth]!, "SELECT count(*)::int FROM users WHERE email = \(email) AND email_verified_at IS NOT NULL") == 1)
            // The event for tenancy is queued in the same transaction.
            #expect(
                try await TestPostgres.count(stack.databases[.auth]!, "SELECT count(*)::int FROM outbox_events WHERE type = 'auth.email_verified'") == 1
            )
            // Used once.
            let again = try await Self.post(stack, "verify-email", ["token": token])
            #expect(again.status == 401)
            #expect(try again.error().code == "VERIFICATION_ERROR")
            // Bad input.
            #expect(try await Self.post(stack, "verify-email", ["token": ""]).status == 422)
            #expect(try await Self.post(stack, "verify-email", ["token": "forged"]).status == 401)
            #expect(try await Self.post(stack, "verify-email", ["token": String(repeating: "x", count: 5_000)]).status == 401)
            #expect(try await TestHTTP.send(.POST, stack.url(.auth) + "/api/auth/verify-email", body: "{").status == 400)
            // A verified user gets no more verification mail.
            let before = try await Self.mails(stack, to: email)
            #expect(try await Self.post(stack, "resend-verification", ["email": email]).status == 200)
            #expect(try await Self.mails(stack, to: email) == before)
        }
    }

    @Test func resendAndForgotAnswerTheSameWhateverTheEmail() async throws {
        try await TestStack.with(.auth) { stack in
            let email = Fixtures.uniqueEmail()
            #expect(try await Fixtures.createOwner(authURL: stack.url(.auth), email: email).status == 201)
            let unknown = Fixtures.uniqueEmail("nobody")
            for path in ["resend-verification", "forgot-password"] {
                let started = ContinuousClock.now
                let known = try await Self.post(stack, path, ["email": email])
                let knownTime = ContinuousClock.now - started
                let restarted = ContinuousClock.now
                let other = try await Self.post(stack, path, ["email": unknown])
                let otherTime = ContinuousClock.now - restarted
                #expect(known.status == 200 && other.status == 200)
                #expect(known.text.replacingOccurrences(of: known.header("X-Request-ID") ?? "-", with: "") == other.text.replacingOccurrences(of: other.header("X-Request-ID") ?? "-", with: ""))
                // Both wait for the same floor (250 ms), whatever the work behind.
                #expect(knownTime >= .milliseconds(250) && otherTime >= .milliseconds(250))
                #expect(try await Self.post(stack, path, ["email": "not-an-email"]).status == 422)
            }
            // The owner's first mail is under a minute old: no second verification mail yet.
            #expect(try await Self.mails(stack, to: email) == 2)
            #expect(try await Self.mails(stack, to: unknown) == 0)
        }
    }

    @Test func aResetLinkSetsTheNewPasswordOnceAndEndsEverySession() async throws {
        try await TestStack.with(.auth) { stack in
            let email = Fixtures.uniqueEmail()
            #expect(try await Fixtures.createOwner(authURL: stack.url(.auth), email: email).status == 201)
            let login = try await Self.post(stack, "login", ["email": email, "password": Fixtures.password])
            struct Tokens: Decodable { var accessToken: String; var refreshToken: String }
            let session = try login.json(Tokens.self)
            #expect(try await Self.post(stack, "forgot-password", ["email": email.uppercased()]).status == 200)
            let token = try #require(try await Self.mailedToken(stack, to: email, page: "reset-password"))

            let newPassword = "Res3t-Passw0rd"
            let weak = try await Self.post(stack, "reset-password", ["token": token, "new_password": "short", "confirm_password": "short"])
            #expect(weak.status == 422)
            let mismatch = try await Self.post(stack, "reset-password", ["token": token, "new_password": newPassword, "confirm_password": "x"])
            #expect(try mismatch.error().fields?["confirm_password"] != nil)
            #expect(try await Self.post(stack, "reset-password", ["token": "forged", "new_password": newPassword, "confirm_password": newPassword]).status == 401)

            let reset = try await Self.post(stack, "reset-password", ["token": token, "new_password": newPassword, "confirm_password": newPassword])
            #expect(reset.status == 200)
            let reused = try await Self.post(stack, "reset-password", ["token": token, "new_password": "An0ther-pass", "confirm_password": "An0ther-pass"])
            #expect(reused.status == 401)
            #expect(try reused.error().code == "RESET_TOKEN_INVALID")
            // Old password, old access token and old refresh token all stop working.
            #expect(try await Self.post(stack, "login", ["email": email, "password": Fixtures.password]).status == 401)
            #expect(try await TestHTTP.send(.GET, stack.url(.auth) + "/api/auth/me", headers: Fixtures.bearer(session.accessToken)).status == 401)
            #expect(try await Self.post(stack, "refresh", ["refresh_token": session.refreshToken]).status == 401)
            #expect(try await Self.post(stack, "login", ["email": email, "password": newPassword]).status == 200)
            // The link reached the mailbox: the email counts as verified.
            #expect(try await TestPostgres.count(stack.databases[.auth]!, "SELECT count(*)::int FROM users WHERE email = \(email) AND email_verified_at IS NOT NULL") == 1)
        }
    }

    @Test func anExpiredResetLinkIsRefused() async throws {
        try await TestStack.with(.auth) { stack in
            let email = Fixtures.uniqueEmail()
            #expect(try await Fixtures.createOwner(authURL: stack.url(.auth), email: email).status == 201)
            #expect(try await Self.post(stack, "forgot-password", ["email": email]).status == 200)
            let token = try #require(try await Self.mailedToken(stack, to: email, page: "reset-password"))
            _ = try await TestPostgres.count(
                stack.databases[.auth]!,
                "WITH u AS (UPDATE email_tokens SET expires_at = now() - interval '1 second' WHERE purpose = 'reset_password' RETURNING 1) SELECT count(*)::int FROM u"
            )
            let answer = try await Self.post(stack, "reset-password", ["token": token, "new_password": "Res3t-Passw0rd", "confirm_password": "Res3t-Passw0rd"])
            #expect(answer.status == 401)
            #expect(try await Self.post(stack, "login", ["email": email, "password": Fixtures.password]).status == 200)
        }
    }

    /// The outbox end to end: verified while tenancy is down, the onboarding step is marked once it is back.
    @Test func emailVerifiedReachesTenancyAfterItWasDown() async throws {
        try await TestStack.with(.auth, .billing, .tenancy) { stack in
            let registered = try await Fixtures.register(at: stack.url(.tenancy))
            let token = try #require(try await Self.mailedToken(stack, to: registered.email, page: "verify-email"))
            let tenant = UUID(uuidString: registered.tenantId)!
            let stepDone = { () async throws -> Bool in
                try await TestPostgres.count(
                    stack.databases[.tenancy]!, "SELECT count(*)::int FROM onboarding_progress WHERE tenant_id = \(tenant) AND step_email_verified"
                ) == 1
            }
            await stack.stop(.tenancy)
            #expect(try await Self.post(stack, "verify-email", ["token": token]).status == 200)
            try await Task.sleep(for: .seconds(2))
            #expect(try await stepDone() == false)
            let attempts = try await TestPostgres.count(
                stack.databases[.auth]!, "SELECT COALESCE(max(attempts), 0)::int FROM outbox_deliveries WHERE delivered_at IS NULL"
            )
            #expect(attempts >= 1)

            try await stack.start(.tenancy)
            let arrived = try await TenancyWait.within(20) { try await stepDone() }
            #expect(arrived != nil, "the event never reached tenancy")
            #expect(try await TestPostgres.count(stack.databases[.tenancy]!, "SELECT count(*)::int FROM processed_events WHERE type = 'auth.email_verified'") == 1)
            #expect(try await TestPostgres.count(stack.databases[.auth]!, "SELECT count(*)::int FROM outbox_deliveries WHERE delivered_at IS NOT NULL") == 1)
        }
    }
}

/// Polls until a condition holds.
enum TenancyWait {
    static func within(_ seconds: Double, _ probe: () async throws -> Bool) async throws -> Double? {
        let started = ContinuousClock.now
        while ContinuousClock.now - started < .seconds(seconds) {
            if try await probe() { return Double((ContinuousClock.now - started) / .milliseconds(1)) / 1_000 }
            try await Task.sleep(for: .milliseconds(200))
        }
        return nil
    }
}
