import Foundation
import InternalAPI
import Logging
import PostgresNIO
import ServiceCore

/// What an email token is for.
enum EmailTokenPurpose: String, Sendable {
    case verifyEmail = "verify_email"
    case resetPassword = "reset_password"
}

/// Verification and password-reset mails: a random token (only its SHA-256 is stored, used once,
/// expiring) and the mail carrying its link, written in one transaction with the change that needs
/// it, so a mail is sent exactly when that change commits.
struct AccountEmails: Sendable {
    let client: Database
    let outbox: Outbox
    /// Where the links point: the dashboard's pages that post the token back.
    let appBaseURL: String
    let verificationLifetime: Duration
    let resetLifetime: Duration
    /// A new verification mail is not sent while the last one is younger than this.
    let resendInterval: Duration
    let accessLifetime: Duration

    /// Sends a verification mail to `user`, unless their email is verified or one went out within
    /// `resendInterval`; returns whether one was queued.
    @discardableResult
    func sendVerification(to user: UserRecord, logger: Logger) async throws -> Bool {
        try await client.transaction(logger: logger) { connection in
            // Locks the user's row, so two requests at once queue one mail.
            let rows = try await connection.query(
                """
                SELECT u.email_verified_at IS NULL AND u.deleted_at IS NULL AND NOT EXISTS (
                    SELECT 1 FROM email_tokens e WHERE e.user_id = u.id AND e.purpose = 'verify_email'
                    AND e.created_at > now() - make_interval(secs => \(resendInterval.inSeconds))
                ) FROM users u WHERE u.id = \(user.id) FOR UPDATE
                """,
                logger: logger
            ).collect()
            guard try rows.first?.decode(Bool.self) == true else { return false }
            let token = try await issue(.verifyEmail, for: user.id, lifetime: verificationLifetime, on: connection, logger: logger)
            let link = "\(appBaseURL)/verify-email?token=\(token)"
            try await MailOutbox.enqueue(
                MailMessage(
                    to: user.email, subject: "Confirm your email address",
                    textBody: """
                        Hello\(user.fullName.map { " \($0)" } ?? ""),

                        please confirm the email address of your \(user.tenantName) account by opening this link:

                        \(link)

                        The link works once, for \(Int(verificationLifetime.inSeconds / 3_600)) hours. If you did not create an account, ignore this mail.
                        """
                ),
                on: connection, logger: logger
            )
            return true
        }
    }

    /// Marks the token's user verified and queues `auth.email_verified`; nil when the token is
    /// unknown, used, expired, or (when `email` is given) not for that email.
    func verify(token: String, email: String?, logger: Logger) async throws -> UserRecord? {
        try await client.transaction(logger: logger) { connection in
            guard let userID = try await consume(token, .verifyEmail, on: connection, logger: logger) else { return nil }
            let rows = try await connection.query(
                """
                UPDATE users SET email_verified_at = COALESCE(email_verified_at, now()), updated_at = now()
                WHERE id = \(userID) AND deleted_at IS NULL RETURNING id
                """,
                logger: logger
            ).collect()
            guard !rows.isEmpty, let user = try await PostgresUserRepository.user(id: userID, on: connection, logger: logger) else { return nil }
            if let email, email != user.email { throw CancelVerification() }
            try await outbox.enqueue(
                try EventEnvelope(
                    type: EmailVerified.type, source: "auth", payload: EmailVerified(userId: user.id, tenantId: user.tenantID, email: user.email)
                ),
                on: connection, logger: logger
            )
            return user
        }
    }

    /// Thrown inside `verify` to roll it back (the token stays usable) when the email does not match.
    struct CancelVerification: Error {}

    /// Queues a reset mail when an account has this email; returns whether one was queued.
    @discardableResult
    func sendReset(email: String, logger: Logger) async throws -> Bool {
        try await client.transaction(logger: logger) { connection in
            let rows = try await connection.query(
                "\(unescaped: PostgresUserRepository.selectUser) WHERE lower(u.email) = lower(\(email)) AND u.deleted_at IS NULL FOR UPDATE OF u",
                logger: logger
            ).collect()
            guard let user = try rows.first.map(PostgresUserRepository.user(from:)) else { return false }
            let token = try await issue(.resetPassword, for: user.id, lifetime: resetLifetime, on: connection, logger: logger)
            try await MailOutbox.enqueue(
                MailMessage(
                    to: user.email, subject: "Reset your password",
                    textBody: """
                        Someone (hopefully you) asked to reset the password of your \(user.tenantName) account.

                        Choose a new password here:

                        \(appBaseURL)/reset-password?token=\(token)

                        The link works once, for \(Int(resetLifetime.inSeconds / 60)) minutes. If you did not ask for it, ignore this mail: your password stays as it is.
                        """
                ),
                on: connection, logger: logger
            )
            return true
        }
    }

    /// Sets the new password of the token's user, voids every token and session they hold (and
    /// confirms their email: the link reached it); nil when the token is unknown, used or expired.
    func reset(token: String, hash: String, logger: Logger) async throws -> UserRecord? {
        try await client.transaction(logger: logger) { connection in
            guard let userID = try await consume(token, .resetPassword, on: connection, logger: logger) else { return nil }
            let rows = try await connection.query(
                """
                UPDATE users SET password_hash = \(hash), email_verified_at = COALESCE(email_verified_at, now()), updated_at = now()
                WHERE id = \(userID) AND deleted_at IS NULL RETURNING id
                """,
                logger: logger
            ).collect()
            guard !rows.isEmpty else { return nil }
            // Every other reset link dies with this one.
            try await connection.query(
                "UPDATE email_tokens SET used_at = now() WHERE user_id = \(userID) AND purpose = 'reset_password' AND used_at IS NULL",
                logger: logger
            )
            try await RevocationLog.voidTokens(of: userID, reason: "password_reset", accessLifetime: accessLifetime, on: connection, logger: logger)
            guard let user = try await PostgresUserRepository.user(id: userID, on: connection, logger: logger) else { return nil }
            // A locked account opens again for the new password.
            try await connection.query("DELETE FROM login_failures WHERE email = \(user.email)", logger: logger)
            return user
        }
    }

    // MARK: - Tokens

    private func issue(_ purpose: EmailTokenPurpose, for user: UUID, lifetime: Duration, on connection: PostgresConnection, logger: Logger) async throws -> String {
        let token = SecretToken.random()
        try await connection.query(
            """
            INSERT INTO email_tokens (token_hash, user_id, purpose, expires_at)
            VALUES (\(SecretToken.hash(token)), \(user), \(purpose.rawValue), now() + make_interval(secs => \(lifetime.inSeconds)))
            """,
            logger: logger
        )
        return token
    }

    /// Marks the token used and returns its user; nil when unknown, used or expired.
    private func consume(_ token: String, _ purpose: EmailTokenPurpose, on connection: PostgresConnection, logger: Logger) async throws -> UUID? {
        let rows = try await connection.query(
            """
            UPDATE email_tokens SET used_at = now()
            WHERE token_hash = \(SecretToken.hash(token)) AND purpose = \(purpose.rawValue) AND used_at IS NULL AND expires_at > now()
            RETURNING user_id
            """,
            logger: logger
        ).collect()
        return try rows.first?.decode(UUID.self)
    }
}
