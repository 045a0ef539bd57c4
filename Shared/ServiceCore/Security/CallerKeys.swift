import Foundation
import HTTPTypes
import Hummingbird
import JWTKit
import Logging
import Synchronization

extension HTTPField.Name {
    package static let xCallerToken = HTTPField.Name("X-Caller-Token")!
}

/// Claims of a caller token: who calls (`sub`), which service it is for (`aud`), for a minute.
struct CallerTokenClaims: JWTPayload {
    var sub: SubjectClaim
    var aud: AudienceClaim
    var iat: IssuedAtClaim
    var exp: ExpirationClaim

    func verify(using algorithm: some JWTAlgorithm) throws {
        try exp.verifyNotExpired()
    }
}

/// A service's own signing key (ES256), for internal routes that accept only named callers.
///
/// Least privilege where `SERVICE_TOKEN_SECRET` cannot give it: that secret is shared, so whoever
/// holds it can call every internal route as anyone. A caller key is one service's alone; the
/// callee holds only its public half, so nothing it leaks can sign, and a leaked caller key opens
/// only the routes that name that caller.
package final class CallerIdentity: Sendable {
    package let name: String
    private let keys: JWTKeyCollection
    private let cached = Mutex<[String: (token: String, renewAfter: Date)]>([:])

    package init(name: String, privateKeyPEM: String) async throws {
        self.name = name
        self.keys = await JWTKeyCollection().add(ecdsa: try ES256PrivateKey(pem: privateKeyPEM))
    }

    /// A token for calls to `audience`, reused for half its lifetime.
    package func token(for audience: String) async throws -> String {
        let now = Date()
        if let hit = cached.withLock({ $0[audience] }), hit.renewAfter > now { return hit.token }
        let issued = Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down))
        let token = try await keys.sign(
            CallerTokenClaims(
                sub: SubjectClaim(value: name), aud: AudienceClaim(value: audience), iat: IssuedAtClaim(value: issued),
                exp: ExpirationClaim(value: issued.addingTimeInterval(60))
            )
        )
        cached.withLock { $0[audience] = (token, issued.addingTimeInterval(30)) }
        return token
    }

    /// A new key pair as PEM, for a launcher that starts both sides (the suite, tests).
    package static func makeKeyPair() -> (privateKeyPEM: String, publicKeyPEM: String) {
        let key = ES256PrivateKey()
        return (key.pemRepresentation, key.publicKey.pemRepresentation)
    }
}

/// Lets through only requests carrying a token of one of `callers` (by public key) made for this
/// service; 401 otherwise, whatever else the request carries (a shared service token included).
package struct RequireCaller<Context: RequestContext>: RouterMiddleware {
    private let audience: String
    private let callers: [String: JWTKeyCollection]

    /// - Parameter callers: caller name → its public key (PEM); a caller without a key is refused.
    package init(audience: String, callers: [String: String]) async throws {
        self.audience = audience
        var collections: [String: JWTKeyCollection] = [:]
        for (name, pem) in callers {
            collections[name] = await JWTKeyCollection().add(ecdsa: try ES256PublicKey(pem: pem))
        }
        self.callers = collections
    }

    package func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let token = request.headers[.xCallerToken], let caller = await verify(token) else {
            throw AppError.rejectedCredentials("This route answers only its named callers", code: "CALLER_NOT_ALLOWED")
        }
        var context = context
        context.logger[metadataKey: "caller"] = .string(caller)
        return try await next(request, context)
    }

    private func verify(_ token: String) async -> String? {
        for (name, keys) in callers {
            guard let claims = try? await keys.verify(token, as: CallerTokenClaims.self) else { continue }
            if claims.sub.value == name, claims.aud.value.contains(audience) { return name }
        }
        return nil
    }
}
