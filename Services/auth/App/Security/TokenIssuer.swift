import Crypto
import Foundation
import JWTKit
import Logging
import PostgresNIO
import ServiceCore
import Synchronization

/// Signs access tokens with auth's ES256 key and publishes the public half as a JWKS.
///
/// The key comes from configuration (`JWT_SIGNING_KEY`) or from the `signing_keys` table, where
/// the first replica to start creates it under an advisory lock.
final class TokenIssuer: JWKSSource, Sendable {
    private struct Loaded {
        var keys: JWTKeyCollection
        var kid: JWKIdentifier
        var jwks: JWKS
    }

    let lifetimeSeconds: Int
    private let loaded = Mutex<Loaded?>(nil)

    init(lifetimeSeconds: Int) {
        self.lifetimeSeconds = lifetimeSeconds
    }

    /// Loads (or creates) the signing key; runs before the server accepts requests.
    func load(configuredPEM: String?, postgres: PostgresClient, logger: Logger) async throws {
        let key: ES256PrivateKey
        if let configuredPEM {
            key = try ES256PrivateKey(pem: configuredPEM)
        } else {
            key = try await Self.storedKey(postgres: postgres, logger: logger)
        }
        guard let parameters = key.parameters else { throw AppError.internalError("signing key has no public parameters") }
        let kid = JWKIdentifier(string: Self.keyID(x: parameters.x, y: parameters.y))
        let keys = await JWTKeyCollection().add(ecdsa: key, kid: kid)
        let jwk = JWK.ecdsa(.es256, identifier: kid, x: parameters.x, y: parameters.y, curve: .p256)
        loaded.withLock { $0 = Loaded(keys: keys, kid: kid, jwks: JWKS(keys: [jwk])) }
        logger.info("signing key ready", metadata: ["kid": "\(kid.string)"])
    }

    func issue(_ claims: AccessTokenClaims) async throws -> String {
        guard let current = loaded.withLock({ $0 }) else { throw AppError.unavailable("Signing key not loaded yet") }
        return try await current.keys.sign(claims, kid: current.kid)
    }

    func fetchJWKS() async throws -> JWKS {
        guard let jwks = loaded.withLock({ $0?.jwks }) else { throw AppError.unavailable("Signing key not loaded yet") }
        return jwks
    }

    /// A stable id for a public key: the first 16 bytes of SHA-256 over its coordinates, base64url.
    static func keyID(x: String, y: String) -> String {
        let digest = SHA256.hash(data: Data("\(x).\(y)".utf8))
        return Data(digest.prefix(16)).base64URLEncodedString()
    }

    private static func storedKey(postgres: PostgresClient, logger: Logger) async throws -> ES256PrivateKey {
        let pem: String = try await postgres.transaction(logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(\(Int64(0x4155_5448_4B45_59)))", logger: logger)
            let rows = try await connection.query(
                "SELECT private_key_pem FROM signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC LIMIT 1",
                logger: logger
            )
            for try await pem in rows.decode(String.self) { return pem }
            let key = ES256PrivateKey()
            guard let parameters = key.parameters else { throw AppError.internalError("generated key has no parameters") }
            let kid = keyID(x: parameters.x, y: parameters.y)
            try await connection.query(
                "INSERT INTO signing_keys (kid, private_key_pem) VALUES (\(kid), \(key.pemRepresentation))",
                logger: logger
            )
            logger.notice("generated a new signing key", metadata: ["kid": "\(kid)"])
            return key.pemRepresentation
        }
        return try ES256PrivateKey(pem: pem)
    }
}
