import Crypto
import Foundation
import HTTPTypes
import Logging
import PostgresNIO
import ServiceCore
import ServiceLifecycle

/// Registrations made under an `Idempotency-Key`: one row per key, claimed by the first request,
/// finished with the answer to replay. Keys live `lifetime` (24 h); an expired key counts as new.
///
/// The row holds a keyed fingerprint of the canonical request (password included), never the request
/// itself, and of a 201 only the fields without secrets (a replay mints fresh tokens). The fingerprint
/// is an HMAC-SHA256 under a key derived from tenancy's own service key: a plain SHA-256 of an email
/// and a password is a fast hash to guess the password against, and the table alone (a backup, a
/// replica) must not offer one.
struct RegistrationRequests: Sendable {
    /// What the table says about a key for one request.
    enum Claim: Sendable {
        /// The key is this request's: register under `registrationID`, then `complete` or `release`.
        case claimed(registrationID: UUID)
        /// Another request with this key and body is still registering.
        case inProgress
        /// The key was used with another body.
        case reused
        /// Finished: replay this answer.
        case completed(registrationID: UUID, status: Int, body: String)
    }

    let client: Database
    let lifetime: Duration
    /// An `in_progress` row older than this belongs to a registration that died (no registration
    /// takes this long); a retry with the same body takes the key over.
    let abandonedAfter: Duration
    /// `fingerprintKey(servicePrivateKeyPEM:)` of tenancy's `SERVICE_KEY`: the same on every replica.
    /// A new service key makes keys still in flight look reused (422) for at most their 24 hours.
    let fingerprintKey: SymmetricKey

    func claim(key: String, fingerprint: Data, logger: Logger) async throws -> Claim {
        let lifetimeSeconds = lifetime.components.seconds
        let abandonedSeconds = abandonedAfter.components.seconds
        // The row may vanish between the two statements (released by a failed first request): look again.
        for _ in 0..<3 {
            let registrationID = UUID()
            let claimed = try await client.query(
                """
                INSERT INTO registration_requests (idempotency_key, fingerprint, registration_id, state, expires_at)
                VALUES (\(key), \(fingerprint), \(registrationID), 'in_progress', now() + \(lifetimeSeconds) * interval '1 second')
                ON CONFLICT (idempotency_key) DO UPDATE SET
                    fingerprint = EXCLUDED.fingerprint, registration_id = EXCLUDED.registration_id, state = 'in_progress',
                    response_status = NULL, response_body = NULL, created_at = now(), expires_at = EXCLUDED.expires_at
                WHERE registration_requests.expires_at <= now()
                   OR (registration_requests.state = 'in_progress' AND registration_requests.fingerprint = EXCLUDED.fingerprint
                       AND registration_requests.created_at < now() - \(abandonedSeconds) * interval '1 second')
                RETURNING registration_id
                """,
                logger: logger
            )
            if claimed.count > 0 { return .claimed(registrationID: registrationID) }
            let rows = try await client.query(
                """
                SELECT fingerprint, registration_id, state, response_status, response_body::text
                FROM registration_requests WHERE idempotency_key = \(key)
                """,
                logger: logger
            )
            for (stored, registrationID, state, status, body) in try rows.decode((Data, UUID, String, Int?, String?).self) {
                guard stored == fingerprint else { return .reused }
                guard state == "completed", let status, let body else { return .inProgress }
                return .completed(registrationID: registrationID, status: status, body: body)
            }
        }
        throw AppError.unavailable("Could not settle the Idempotency-Key; try again", code: "IDEMPOTENCY_IN_PROGRESS")
    }

    /// Keeps `body` (JSON) as the answer replayed for the key; only the claimant's own claim is finished.
    func complete(key: String, registrationID: UUID, status: Int, body: some Encodable, logger: Logger) async throws {
        let json = String(decoding: try JSONCoding.encoder.encode(body), as: UTF8.self)
        try await client.query(
            """
            UPDATE registration_requests SET state = 'completed', response_status = \(status), response_body = \(json)::jsonb
            WHERE idempotency_key = \(key) AND registration_id = \(registrationID) AND state = 'in_progress'
            """,
            logger: logger
        )
    }

    /// Frees the key after a failure worth retrying (nothing was left behind): the next request runs afresh.
    func release(key: String, registrationID: UUID, logger: Logger) async throws {
        try await client.query(
            """
            DELETE FROM registration_requests
            WHERE idempotency_key = \(key) AND registration_id = \(registrationID) AND state = 'in_progress'
            """,
            logger: logger
        )
    }

    /// Removes expired keys; returns how many.
    func prune(logger: Logger) async throws -> Int {
        try await client.query("DELETE FROM registration_requests WHERE expires_at <= now() RETURNING 1", logger: logger).count
    }

    /// The HMAC key for fingerprints, derived (HKDF-SHA256) from the service's P-256 private key.
    static func fingerprintKey(servicePrivateKeyPEM pem: String) throws -> SymmetricKey {
        let key = try P256.Signing.PrivateKey(pemRepresentation: pem)
        return HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: key.rawRepresentation), info: Data("tenancy registration fingerprint".utf8), outputByteCount: 32
        )
    }

    /// The fingerprint of a registration request: HMAC-SHA256 of its validated fields as canonical
    /// JSON (sorted keys), so two bodies that differ only in spacing, key order or email case match.
    func fingerprint(_ input: RegistrationService.Input) -> Data {
        Self.fingerprint(input, key: fingerprintKey)
    }

    static func fingerprint(_ input: RegistrationService.Input, key: SymmetricKey) -> Data {
        struct Canonical: Encodable {
            var email: String
            var password: String
            var accountName: String?
            var fullName: String?
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let canonical = Canonical(email: input.email, password: input.password, accountName: input.accountName, fullName: input.fullName)
        return Data(HMAC<SHA256>.authenticationCode(for: (try? encoder.encode(canonical)) ?? Data(), using: key))
    }
}

/// Removes expired `Idempotency-Key`s every `interval`.
struct RegistrationRequestPruner: Service {
    let requests: RegistrationRequests
    let interval: Duration
    let logger: Logger

    func run() async throws {
        await repeatUntilShutdown(every: interval) {
            do {
                let removed = try await requests.prune(logger: logger)
                if removed > 0 { logger.info("expired idempotency keys removed", metadata: ["count": "\(removed)"]) }
            } catch {
                logger.warning("could not remove expired idempotency keys", metadata: ["error": "\(error)"])
            }
        }
    }
}
