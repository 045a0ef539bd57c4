import Foundation
import JWTKit
import Logging
import PostgresNIO
import ServiceCore

/// A row of `signing_keys`.
struct StoredSigningKey: Sendable {
    var kid: String
    var privateKeyPEM: String
    var createdAt: Date
    /// From this moment the key signs; before it, it is only published.
    var activatesAt: Date
    /// The moment a newer key took over (that key's `activatesAt`); nil for the newest key.
    var retiredAt: Date?

    func state(at now: Date) -> SigningKeyState {
        if activatesAt > now { return .pending }
        if let retiredAt, retiredAt <= now { return .retiring }
        return .active
    }
}

/// Where a key stands, as `GET /api/auth/signing-keys` shows it.
enum SigningKeyState: String, Codable, Sendable {
    /// Published, not signing yet: verifiers fetch it before the first token signed with it exists.
    case pending
    /// Signing.
    case active
    /// Replaced; published until every token it signed has expired.
    case retiring
    /// A public key from `JWT_ADDITIONAL_PUBLIC_KEYS`: verified, never signed with here.
    case published
}

/// What a rotation did.
struct SigningKeyRotation: Sendable {
    var kid: String
    var createdAt: Date
    var activatesAt: Date
    /// The key that stops signing at `activatesAt`.
    var retiringKid: String?
}

/// auth's signing keys in its database.
protocol SigningKeyRepository: Sendable {
    /// Keys not retired, or retired less than `retention` ago, in order of activation.
    func published(retention: Duration, logger: Logger) async throws -> [StoredSigningKey]
    /// Creates a key, active at once, when none is in service (the first start).
    func ensureKey(logger: Logger) async throws
    /// Adds a key that activates `delay` from now and retires the current one at that moment;
    /// 409 `ROTATION_PENDING` while an earlier rotation's key is still waiting to activate.
    func rotate(delay: Duration, logger: Logger) async throws -> SigningKeyRotation
    /// Deletes the keys, private halves included, retired more than `retention` ago; returns how many.
    func prune(retention: Duration, logger: Logger) async throws -> Int
}

struct PostgresSigningKeyRepository: SigningKeyRepository {
    let client: Database

    /// Serialises key creation and rotation across replicas ("AUTHKEY").
    static let lockID = Int64(0x4155_5448_4B45_59)

    func published(retention: Duration, logger: Logger) async throws -> [StoredSigningKey] {
        try await client.query(
            """
            SELECT kid, private_key_pem, created_at, activates_at, retired_at FROM signing_keys
            WHERE retired_at IS NULL OR retired_at > now() - \(retention.inSeconds) * interval '1 second'
            ORDER BY activates_at, kid
            """,
            logger: logger
        ).decode((String, String, Date, Date, Date?).self).map { kid, pem, created, activates, retired in
            StoredSigningKey(kid: kid, privateKeyPEM: pem, createdAt: created, activatesAt: activates, retiredAt: retired)
        }
    }

    func ensureKey(logger: Logger) async throws {
        try await client.transaction(logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.lockID))", logger: logger)
            let current = try await connection.query("SELECT kid FROM signing_keys WHERE retired_at IS NULL LIMIT 1", logger: logger)
            for try await _ in current { return }
            let key = try Self.newKey()
            try await connection.query(
                "INSERT INTO signing_keys (kid, private_key_pem, activates_at) VALUES (\(key.kid), \(key.pem), now())",
                logger: logger
            )
            logger.notice("generated the first signing key", metadata: ["kid": "\(key.kid)"])
        }
    }

    func rotate(delay: Duration, logger: Logger) async throws -> SigningKeyRotation {
        enum Outcome: Sendable {
            case rotated(SigningKeyRotation)
            case pending(kid: String, activatesAt: Date)
        }
        let outcome: Outcome = try await client.transaction(logger: logger) { connection in
            // A second rotation waits here for the first to commit, then sees its key as pending.
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.lockID))", logger: logger)
            let pending = try await connection.query(
                "SELECT kid, activates_at FROM signing_keys WHERE activates_at > clock_timestamp() ORDER BY activates_at DESC LIMIT 1",
                logger: logger
            )
            for try await (kid, activatesAt) in pending.decode((String, Date).self) { return .pending(kid: kid, activatesAt: activatesAt) }
            let key = try Self.newKey()
            // Whole seconds, rounded up: the time the API reports is the exact moment, never before the delay.
            let inserted = try await connection.query(
                """
                INSERT INTO signing_keys (kid, private_key_pem, created_at, activates_at)
                VALUES (\(key.kid), \(key.pem), clock_timestamp(),
                        date_trunc('second', clock_timestamp()) + \(delay.inSeconds.rounded(.up) + 1) * interval '1 second')
                RETURNING created_at, activates_at
                """,
                logger: logger
            )
            var times: (created: Date, activates: Date)?
            for try await row in inserted.decode((Date, Date).self) { times = row }
            guard let times else { throw AppError.internalError("signing key insert returned nothing") }
            let retired = try await connection.query(
                "UPDATE signing_keys SET retired_at = \(times.activates) WHERE retired_at IS NULL AND kid <> \(key.kid) RETURNING kid",
                logger: logger
            )
            var retiringKid: String?
            for try await kid in retired.decode(String.self) { retiringKid = kid }
            return .rotated(SigningKeyRotation(kid: key.kid, createdAt: times.created, activatesAt: times.activates, retiringKid: retiringKid))
        }
        switch outcome {
        case .rotated(let rotation):
            return rotation
        case .pending(let kid, let activatesAt):
            throw AppError.conflict(
                "Key \(kid) from the last rotation starts signing at \(activatesAt.formatted(.iso8601)); rotate again after that",
                code: "ROTATION_PENDING"
            )
        }
    }

    func prune(retention: Duration, logger: Logger) async throws -> Int {
        try await client.query(
            "DELETE FROM signing_keys WHERE retired_at <= now() - \(retention.inSeconds) * interval '1 second' RETURNING kid", logger: logger
        ).count
    }

    /// A fresh P-256 key and its id.
    static func newKey() throws -> (kid: String, pem: String) {
        let key = ES256PrivateKey()
        return (try TokenIssuer.keyID(of: key.publicKey), key.pemRepresentation)
    }
}
