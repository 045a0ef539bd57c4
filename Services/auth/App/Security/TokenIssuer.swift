import Crypto
import Foundation
import JWTKit
import Logging
import ServiceCore
import Synchronization

/// Signs access tokens with auth's ES256 keys and publishes their public halves as a JWKS.
///
/// Keys come from configuration (`JWT_SIGNING_KEY`, with `JWT_ADDITIONAL_PUBLIC_KEYS` published
/// beside it) or from the `signing_keys` table, where the first replica to start creates one. From
/// the table, each replica signs with the newest key whose `activates_at` has passed among the keys
/// it has loaded, so replicas switch keys at the same moment without talking to each other; they
/// reload the table every `reloadInterval`, well inside the activation delay, so a rotation made on
/// any replica is in every replica's JWKS long before the new key signs.
final class TokenIssuer: JWKSSource, Sendable {
    enum KeySource: Sendable {
        case configured(privateKeyPEM: String, additionalPublicKeyPEMs: [String])
        case database(any SigningKeyRepository)
    }

    /// A key this replica may sign with, from the moment it activates.
    struct Signer: Sendable, Equatable {
        var kid: String
        var activatesAt: Date
    }

    private struct Loaded: Sendable {
        var keys: JWTKeyCollection
        var signers: [Signer]
        var jwks: JWKS
    }

    let lifetimeSeconds: Int
    let source: KeySource
    /// How long a rotated-in key is published before it signs.
    let activationDelay: Duration
    private let loaded = Mutex<Loaded?>(nil)

    init(lifetimeSeconds: Int, source: KeySource, activationDelay: Duration) {
        self.lifetimeSeconds = lifetimeSeconds
        self.source = source
        self.activationDelay = activationDelay
    }

    /// How long a replaced key stays published after it stopped signing: every token it signed has
    /// expired by then, those a replica signed before it reloaded included (it reloads within the delay).
    var retention: Duration { .seconds(lifetimeSeconds) + activationDelay }

    /// How often a replica reloads the table: a quarter of the activation delay, at most 30 s.
    var reloadInterval: Duration { min(.seconds(30), activationDelay / 4) }

    /// Loads (or, on the first start, creates) the keys; runs before the server accepts requests.
    func load(logger: Logger) async throws {
        switch source {
        case .configured(let privateKeyPEM, let additionalPublicKeyPEMs):
            let key = try ES256PrivateKey(pem: privateKeyPEM)
            let kid = try Self.keyID(of: key.publicKey)
            var published = [try Self.jwk(of: key.publicKey, kid: kid)]
            for pem in additionalPublicKeyPEMs {
                let publicKey = try ES256PublicKey(pem: pem)
                published.append(try Self.jwk(of: publicKey, kid: try Self.keyID(of: publicKey)))
            }
            let keys = await JWTKeyCollection().add(ecdsa: key, kid: JWKIdentifier(string: kid))
            loaded.withLock { $0 = Loaded(keys: keys, signers: [Signer(kid: kid, activatesAt: .distantPast)], jwks: JWKS(keys: published)) }
            logger.info("signing key ready", metadata: ["kid": "\(kid)", "published": "\(published.count)"])
        case .database(let repository):
            try await repository.ensureKey(logger: logger)
            try await reload(logger: logger)
        }
    }

    /// Reads the published keys from the table again (nothing to do for configured keys).
    func reload(logger: Logger) async throws {
        guard case .database(let repository) = source else { return }
        let stored = try await repository.published(retention: retention, logger: logger)
        let keys = JWTKeyCollection()
        var signers: [Signer] = []
        var published: [JWK] = []
        for row in stored {
            let key = try ES256PrivateKey(pem: row.privateKeyPEM)
            await keys.add(ecdsa: key, kid: JWKIdentifier(string: row.kid))
            published.append(try Self.jwk(of: key.publicKey, kid: row.kid))
            signers.append(Signer(kid: row.kid, activatesAt: row.activatesAt))
        }
        guard !signers.isEmpty else { throw AppError.internalError("signing_keys holds no key in service") }
        let previous = loaded.withLock { state in
            defer { state = Loaded(keys: keys, signers: signers, jwks: JWKS(keys: published)) }
            return state?.signers
        }
        if previous != signers {
            logger.info("signing keys loaded", metadata: ["kids": "\(signers.map(\.kid))", "signing": "\(Self.signingKeyID(among: signers, at: Date()) ?? "")"])
        }
    }

    func issue(_ claims: AccessTokenClaims) async throws -> String {
        guard let current = loaded.withLock({ $0 }), let kid = Self.signingKeyID(among: current.signers, at: Date()) else {
            throw AppError.unavailable("Signing key not loaded yet")
        }
        return try await current.keys.sign(claims, kid: JWKIdentifier(string: kid))
    }

    func fetchJWKS() async throws -> JWKS {
        guard let jwks = loaded.withLock({ $0?.jwks }) else { throw AppError.unavailable("Signing key not loaded yet") }
        return jwks
    }

    /// The key that signs at `now`: the newest one already active; before any is (this replica's
    /// clock behind the database's at the first start), the first to activate.
    static func signingKeyID(among signers: [Signer], at now: Date) -> String? {
        let active = signers.filter { $0.activatesAt <= now }.max { $0.activatesAt < $1.activatesAt }
        return (active ?? signers.min { $0.activatesAt < $1.activatesAt })?.kid
    }

    /// auth's own verifier's key source: a token whose `kid` this replica has not loaded may be
    /// signed by a key another replica rotated in, so the table is read again before it is refused.
    func reloadingSource(logger: Logger) -> some JWKSSource {
        ReloadingSource(issuer: self, logger: logger)
    }

    private struct ReloadingSource: JWKSSource {
        let issuer: TokenIssuer
        let logger: Logger

        func fetchJWKS() async throws -> JWKS {
            try await issuer.reload(logger: logger)
            return try await issuer.fetchJWKS()
        }
    }

    /// A stable id for a public key: the first 16 bytes of SHA-256 over its coordinates, base64url.
    static func keyID(x: String, y: String) -> String {
        let digest = SHA256.hash(data: Data("\(x).\(y)".utf8))
        return Data(digest.prefix(16)).base64URLEncodedString()
    }

    static func keyID(of key: ES256PublicKey) throws -> String {
        guard let parameters = key.parameters else { throw AppError.internalError("signing key has no public parameters") }
        return keyID(x: parameters.x, y: parameters.y)
    }

    static func jwk(of key: ES256PublicKey, kid: String) throws -> JWK {
        guard let parameters = key.parameters else { throw AppError.internalError("signing key has no public parameters") }
        return JWK.ecdsa(.es256, identifier: JWKIdentifier(string: kid), x: parameters.x, y: parameters.y, curve: .p256)
    }
}
