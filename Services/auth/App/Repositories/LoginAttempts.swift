import Foundation
import Logging
import PostgresNIO
import ServiceCore

/// Brute-force protection per account: after `maxFailures` failed sign-ins in a row, the email is
/// locked for `lockout`, whether or not an account has it, so the lock itself reveals nothing.
protocol LoginAttempts: Sendable {
    /// Counts an attempt before its password is checked. Returns nil when it may go on, or how long
    /// the email is still locked.
    func begin(email: String, logger: Logger) async throws -> Duration?
    /// The attempt succeeded: the count starts over.
    func succeeded(email: String, logger: Logger) async throws
}

struct PostgresLoginAttempts: LoginAttempts {
    let client: Database
    let maxFailures: Int
    let lockout: Duration

    func begin(email: String, logger: Logger) async throws -> Duration? {
        // One statement, so concurrent attempts each get their own number: at most `maxFailures`
        // passwords are ever checked per lock period. The attempt that reaches the limit locks the
        // email. A lock that has run out, or failures older than a lock period, start a fresh count.
        let window = lockout.inSeconds
        let rows = try await client.query(
            """
            INSERT INTO login_failures AS f (email, failures, locked_until)
            VALUES (\(email), 1, CASE WHEN 1 >= \(maxFailures) THEN now() + make_interval(secs => \(window)) END)
            ON CONFLICT (email) DO UPDATE SET
                failures = CASE
                    WHEN f.locked_until <= now() OR (f.locked_until IS NULL AND f.last_failure_at < now() - make_interval(secs => \(window)))
                        THEN 1
                    ELSE f.failures + 1
                END,
                last_failure_at = now(),
                locked_until = CASE
                    WHEN f.locked_until > now() THEN f.locked_until
                    WHEN f.locked_until <= now() OR (f.locked_until IS NULL AND f.last_failure_at < now() - make_interval(secs => \(window)))
                        THEN CASE WHEN 1 >= \(maxFailures) THEN now() + make_interval(secs => \(window)) END
                    WHEN f.failures + 1 >= \(maxFailures) THEN now() + make_interval(secs => \(window))
                END
            RETURNING failures, COALESCE(EXTRACT(EPOCH FROM locked_until - now())::float8, 0)
            """,
            logger: logger
        )
        guard let (attempt, remaining) = try rows.decode((Int, Double).self).first else { return nil }
        // Past the limit: refused without a password check. The attempt that reached it goes on.
        guard attempt > maxFailures, remaining > 0 else { return nil }
        return .milliseconds(Int64((remaining * 1_000).rounded(.up)))
    }

    func succeeded(email: String, logger: Logger) async throws {
        try await client.query("DELETE FROM login_failures WHERE email = \(email)", logger: logger)
    }
}
