import Foundation
import InternalAPI
import Logging
import PostgresNIO
import ServiceCore

/// A new session and its first refresh token.
struct StartedSession: Sendable {
    var id: UUID
    var refreshToken: RefreshToken
}

/// What presenting a refresh token came to.
enum RefreshOutcome: Sendable {
    /// The token was current: `refreshToken` replaces it.
    case rotated(session: UUID, user: UserRecord, refreshToken: RefreshToken)
    /// The token had just been rotated (within the reuse interval): its successor, again.
    case repeated(session: UUID, user: UserRecord, refreshToken: RefreshToken)
    /// The token had been rotated long before: someone replays it, so the whole family is revoked.
    case reused
    /// Unknown, expired, or its session is over.
    case invalid
}

/// Sessions (refresh-token families), their tokens, and the revocations the gateway follows.
protocol SessionRepository: Sendable {
    func start(userID: UUID, logger: Logger) async throws -> StartedSession
    func refresh(_ token: RefreshToken, logger: Logger) async throws -> RefreshOutcome
    /// Ends one session of the user; false when it was not theirs or already over.
    func revoke(session: UUID, userID: UUID, reason: String, logger: Logger) async throws -> Bool
    /// Ends every session of the user and voids every access token they hold; returns the sessions ended.
    func revokeAll(userID: UUID, reason: String, logger: Logger) async throws -> Int
    func revocations(after cursor: FeedCursor, limit: Int, logger: Logger) async throws -> [Revocation]
    /// Forgets what can no longer matter: expired tokens, sessions and revocations.
    func prune(logger: Logger) async throws -> Int
}

struct PostgresSessionRepository: SessionRepository {
    let client: Database
    /// A refresh token's life; each rotation starts a new one.
    let refreshLifetime: Duration
    /// How long a rotated token still gets its successor instead of revoking the family.
    let reuseInterval: Duration
    /// The access tokens' life: a revocation is kept that long, after which every token it voids has expired.
    let accessLifetime: Duration

    func start(userID: UUID, logger: Logger) async throws -> StartedSession {
        let session = UUID()
        let token = RefreshToken.generate()
        try await client.transaction(logger: logger) { connection in
            try await connection.query(
                """
                INSERT INTO auth_sessions (id, user_id, expires_at)
                VALUES (\(session), \(userID), now() + make_interval(secs => \(refreshLifetime.inSeconds)))
                """,
                logger: logger
            )
            try await connection.query("UPDATE users SET last_login_at = now() WHERE id = \(userID)", logger: logger)
            try await insert(token, session: session, on: connection, logger: logger)
        }
        return StartedSession(id: session, refreshToken: token)
    }

    func refresh(_ token: RefreshToken, logger: Logger) async throws -> RefreshOutcome {
        let outcome = try await client.transaction(logger: logger) { connection -> RefreshOutcome in
            // Locking the token serialises concurrent refreshes of it: the second one waits, then
            // finds it rotated and gets the same successor, so a family never forks.
            guard let found = try await lookUp(token, on: connection, logger: logger) else { return .invalid }
            guard found.rotatedAt == nil else {
                if found.rotatedSecondsAgo <= reuseInterval.inSeconds, let successor = try await newest(after: token, sealed: found.successorSealed, on: connection, logger: logger) {
                    return .repeated(session: found.session, user: found.user, refreshToken: successor)
                }
                try await revokeSession(found.session, reason: "refresh_token_reused", on: connection, logger: logger)
                return .reused
            }
            let successor = RefreshToken.generate()
            try await connection.query(
                """
                UPDATE refresh_tokens SET rotated_at = now(), successor_sealed = \(try token.seal(successor))
                WHERE token_hash = \(token.hash)
                """,
                logger: logger
            )
            try await insert(successor, session: found.session, on: connection, logger: logger)
            try await connection.query(
                """
                UPDATE auth_sessions SET refreshed_at = now(), expires_at = now() + make_interval(secs => \(refreshLifetime.inSeconds))
                WHERE id = \(found.session)
                """,
                logger: logger
            )
            return .rotated(session: found.session, user: found.user, refreshToken: successor)
        }
        if case .reused = outcome {
            logger.warning("a rotated refresh token was presented again; its session is revoked")
        }
        return outcome
    }

    func revoke(session: UUID, userID: UUID, reason: String, logger: Logger) async throws -> Bool {
        try await client.transaction(logger: logger) { connection in
            let rows = try await connection.query(
                "SELECT 1 FROM auth_sessions WHERE id = \(session) AND user_id = \(userID) AND revoked_at IS NULL FOR UPDATE",
                logger: logger
            ).collect()
            guard !rows.isEmpty else { return false }
            try await revokeSession(session, reason: reason, on: connection, logger: logger)
            return true
        }
    }

    func revokeAll(userID: UUID, reason: String, logger: Logger) async throws -> Int {
        try await client.transaction(logger: logger) { connection in
            let live = try await connection.query(
                "SELECT count(*)::int FROM auth_sessions WHERE user_id = \(userID) AND revoked_at IS NULL", logger: logger
            ).collect()
            try await RevocationLog.voidTokens(of: userID, reason: reason, accessLifetime: accessLifetime, on: connection, logger: logger)
            return try live.first?.decode(Int.self) ?? 0
        }
    }

    func revocations(after cursor: FeedCursor, limit: Int, logger: Logger) async throws -> [Revocation] {
        let (kind, subject) = Self.feedKey(cursor.after)
        // The cursor's microseconds go in as an integer: a `Date` parameter is truncated to the
        // microsecond below, so the last row of a page would come back on the next one.
        let rows = try await client.query(
            """
            SELECT kind, subject, min_token_version, updated_at, expires_at FROM revocations
            WHERE (updated_at, kind, subject) > (TIMESTAMPTZ 'epoch' + \(cursor.changedSince) * INTERVAL '1 microsecond', \(kind), \(subject))
                AND expires_at > now()
            ORDER BY updated_at, kind, subject LIMIT \(limit)
            """,
            logger: logger
        )
        return try rows.decode((String, UUID, Int?, Date, Date).self).map { kind, subject, version, updatedAt, expiresAt in
            Revocation(
                kind: Revocation.Kind(rawValue: kind) ?? .session, subject: subject.uuidString.lowercased(), minTokenVersion: version,
                updatedAt: updatedAt, expiresAt: expiresAt
            )
        }
    }

    /// `kind:subject` of a feed cursor; anything else starts before every row.
    static func feedKey(_ after: String) -> (kind: String, subject: UUID) {
        let parts = after.split(separator: ":", maxSplits: 1)
        guard parts.count == 2, let subject = UUID(uuidString: String(parts[1])) else { return ("", UUID(uuidString: FeedCursor.noTenant)!) }
        return (String(parts[0]), subject)
    }

    func prune(logger: Logger) async throws -> Int {
        try await client.transaction(logger: logger) { connection in
            var removed = 0
            for statement: PostgresQuery in [
                "DELETE FROM revocations WHERE expires_at < now()",
                // Kept a day past their end, so a late replay is still recognised as one.
                "DELETE FROM auth_sessions WHERE expires_at < now() - interval '1 day' OR revoked_at < now() - interval '1 day'",
                "DELETE FROM refresh_tokens WHERE expires_at < now() - interval '1 day'",
                // Sign-in failures a day old count for nothing any more (the lock period is shorter).
                "DELETE FROM login_failures WHERE last_failure_at < now() - interval '1 day' AND (locked_until IS NULL OR locked_until < now())",
                // API keys 30 days past their revocation, their expiry or their maker's deletion (expired ones are listed until then).
                """
                DELETE FROM api_keys WHERE revoked_at < now() - interval '30 days' OR expires_at < now() - interval '30 days'
                    OR user_id IN (SELECT id FROM users WHERE deleted_at < now() - interval '30 days')
                """,
            ] {
                removed += try await connection.query(statement, logger: logger).collect().count
            }
            return removed
        }
    }

    // MARK: - Parts

    private struct Found {
        var session: UUID
        var user: UserRecord
        var rotatedAt: Date?
        var rotatedSecondsAgo: Double
        var successorSealed: Data?
    }

    /// The token's row and its live session's user, locked; nil when unknown, expired or over.
    private func lookUp(_ token: RefreshToken, on connection: PostgresConnection, logger: Logger) async throws -> Found? {
        let rows = try await connection.query(
            """
            SELECT \(unescaped: PostgresUserRepository.userColumns), s.id, r.rotated_at,
                COALESCE(EXTRACT(EPOCH FROM now() - r.rotated_at)::float8, 0), r.successor_sealed
            FROM refresh_tokens r
            JOIN auth_sessions s ON s.id = r.session_id
            JOIN users u ON u.id = s.user_id
            JOIN tenant_directory t ON t.tenant_id = u.tenant_id
            WHERE r.token_hash = \(token.hash) AND r.expires_at > now() AND s.revoked_at IS NULL AND s.expires_at > now()
                AND u.deleted_at IS NULL
            FOR UPDATE OF r, s
            """,
            logger: logger
        ).collect()
        guard let row = rows.first else { return nil }
        let user = try PostgresUserRepository.user(from: row)
        let columns = row.makeRandomAccess()
        let first = PostgresUserRepository.userColumnCount
        return Found(
            session: try columns[first].decode(UUID.self), user: user, rotatedAt: try columns[first + 1].decode(Date?.self),
            rotatedSecondsAgo: try columns[first + 2].decode(Double.self), successorSealed: try columns[first + 3].decode(Data?.self)
        )
    }

    /// The family's current token, reached from a rotated one by unsealing successors (a burst of
    /// refreshes may have rotated more than once); nil when the chain cannot be followed.
    private func newest(after token: RefreshToken, sealed: Data?, on connection: PostgresConnection, logger: Logger) async throws -> RefreshToken? {
        var holder = token
        var sealed = sealed
        for _ in 0..<16 {
            guard let box = sealed, let successor = holder.unseal(box) else { return nil }
            let rows = try await connection.query(
                "SELECT successor_sealed FROM refresh_tokens WHERE token_hash = \(successor.hash) AND expires_at > now()",
                logger: logger
            ).collect()
            guard let row = rows.first else { return nil }
            guard let next = try row.decode(Data?.self) else { return successor }
            holder = successor
            sealed = next
        }
        return nil
    }

    private func insert(_ token: RefreshToken, session: UUID, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query(
            """
            INSERT INTO refresh_tokens (token_hash, session_id, expires_at)
            VALUES (\(token.hash), \(session), now() + make_interval(secs => \(refreshLifetime.inSeconds)))
            """,
            logger: logger
        )
    }

    private func revokeSession(_ session: UUID, reason: String, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query(
            "UPDATE auth_sessions SET revoked_at = now(), revoked_reason = \(reason) WHERE id = \(session) AND revoked_at IS NULL",
            logger: logger
        )
        try await RevocationLog.record(
            .session, subject: session, minTokenVersion: nil, reason: reason, accessLifetime: accessLifetime, on: connection, logger: logger
        )
    }
}

/// The `revocations` table the gateway follows: written in the transaction that voids the tokens.
enum RevocationLog {
    /// The version that voids every token of a deleted user.
    static let deletedUserVersion = Int(Int32.max)

    static func record(
        _ kind: Revocation.Kind, subject: UUID, minTokenVersion: Int?, reason: String, accessLifetime: Duration,
        on connection: PostgresConnection, logger: Logger
    ) async throws {
        try await connection.query(
            """
            INSERT INTO revocations (kind, subject, min_token_version, reason, expires_at)
            VALUES (\(kind.rawValue), \(subject), \(minTokenVersion), \(reason), now() + make_interval(secs => \(accessLifetime.inSeconds)))
            ON CONFLICT (kind, subject) DO UPDATE SET
                min_token_version = GREATEST(revocations.min_token_version, EXCLUDED.min_token_version),
                reason = EXCLUDED.reason, updated_at = clock_timestamp(),
                expires_at = GREATEST(revocations.expires_at, EXCLUDED.expires_at)
            """,
            logger: logger
        )
    }

    /// Raises the user's token version (voiding every token minted before; `version` sets it
    /// instead), records it for the gateway, and, with `sessionsToo`, ends the user's sessions
    /// except `keeping`; returns the new version.
    @discardableResult
    static func voidTokens(
        of user: UUID, version: Int? = nil, reason: String, keeping session: UUID? = nil, accessLifetime: Duration, sessionsToo: Bool = true,
        on connection: PostgresConnection, logger: Logger
    ) async throws -> Int {
        let rows = try await connection.query(
            """
            UPDATE users SET token_version = COALESCE(\(version), token_version + 1), updated_at = now()
            WHERE id = \(user) RETURNING token_version
            """,
            logger: logger
        ).collect()
        let newVersion = try rows.first?.decode(Int.self) ?? 0
        if sessionsToo {
            try await connection.query(
                """
                UPDATE auth_sessions SET revoked_at = now(), revoked_reason = \(reason)
                WHERE user_id = \(user) AND revoked_at IS NULL AND id IS DISTINCT FROM \(session)
                """,
                logger: logger
            )
        }
        try await record(.user, subject: user, minTokenVersion: newVersion, reason: reason, accessLifetime: accessLifetime, on: connection, logger: logger)
        return newVersion
    }
}
