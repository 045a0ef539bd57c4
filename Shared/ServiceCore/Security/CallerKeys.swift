import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import JWTKit
import Logging
import NIOCore
import Synchronization

extension HTTPField.Name {
    package static let xCallerToken = HTTPField.Name("X-Caller-Token")!
}

/// Claims of a caller token: one request from one service (`sub`) to another (`aud`).
///
/// `req` binds the token to that request (method, target and body), `jti` makes it single use,
/// and it lives `CallerIdentity.lifetime`: a token read off the wire cannot be replayed at the
/// callee, pointed at another route, or carried to another service.
struct CallerTokenClaims: JWTPayload {
    var sub: SubjectClaim
    var aud: AudienceClaim
    var iat: IssuedAtClaim
    var exp: ExpirationClaim
    var jti: IDClaim
    var req: String

    func verify(using algorithm: some JWTAlgorithm) throws {
        try exp.verifyNotExpired()
    }

    /// base64url SHA-256 of `METHOD target\n` followed by the body.
    static func requestDigest(method: String, target: String, body: ByteBuffer?) -> String {
        var hash = SHA256()
        hash.update(data: Data("\(method) \(target)\n".utf8))
        if let body { hash.update(data: body.readableBytesView) }
        return Data(hash.finalize()).base64URLEncodedString()
    }
}

/// A service's own signing key (ES256): what it signs its calls to other services' internal
/// routes with.
///
/// Each service has its own key (`SERVICE_KEY`); a callee holds only the public halves of the
/// callers it accepts (`<CALLER>_PUBLIC_KEY`), so nothing a callee leaks can sign, and a leaked
/// key opens only the routes that name its service.
package final class CallerIdentity: Sendable {
    /// How long a token is good for: long enough for a slow network, short enough that the
    /// callee remembers every token it has seen for its whole life.
    package static let lifetime: TimeInterval = 15

    package let name: String
    private let keys: JWTKeyCollection

    package init(name: String, privateKeyPEM: String) async throws {
        self.name = name
        self.keys = await JWTKeyCollection().add(ecdsa: try ES256PrivateKey(pem: privateKeyPEM))
    }

    /// A token for one request to `audience`: `target` is the request's path and query as sent.
    package func token(
        for audience: String, method: HTTPRequest.Method, target: String, body: ByteBuffer? = nil, issued: Date = Date()
    ) async throws -> String {
        try await keys.sign(
            CallerTokenClaims(
                sub: SubjectClaim(value: name), aud: AudienceClaim(value: audience), iat: IssuedAtClaim(value: issued),
                exp: ExpirationClaim(value: issued.addingTimeInterval(Self.lifetime)), jti: IDClaim(value: UUID().uuidString),
                req: CallerTokenClaims.requestDigest(method: method.rawValue, target: target, body: body)
            )
        )
    }

    /// A new key pair as PEM, for a launcher that starts both sides (the suite, tests).
    package static func makeKeyPair() -> (privateKeyPEM: String, publicKeyPEM: String) {
        let key = ES256PrivateKey()
        return (key.pemRepresentation, key.publicKey.pemRepresentation)
    }
}

/// The public keys of the services allowed to call this one, by name, and the ids of the tokens
/// already used: one per service, shared by all its internal routes.
package final class CallerKeys: Sendable {
    /// The service these keys guard: the audience every token must name.
    package let audience: String
    private let keys: [String: JWTKeyCollection]
    private let seen = Mutex<[String: Date]>([:])
    private let seenLimit: Int

    /// - Parameter publicKeys: caller name → its public key (PEM). A caller without a key is refused.
    package init(audience: String, publicKeys: [String: String], seenLimit: Int = 100_000) async throws {
        self.audience = audience
        var keys: [String: JWTKeyCollection] = [:]
        for (name, pem) in publicKeys {
            keys[name] = await JWTKeyCollection().add(ecdsa: try ES256PublicKey(pem: pem))
        }
        self.keys = keys
        self.seenLimit = seenLimit
    }

    /// Callers that have a key here.
    package var known: Set<String> { Set(keys.keys) }

    /// Why a token was refused, for the log (the caller gets one answer for all of them).
    package enum Refusal: Error, Equatable {
        case malformed, callerNotAccepted(String), badSignature, expired, wrongAudience, wrongRequest, replayed
    }

    /// The calling service, when `token` is a fresh, unused token of one of `accepted` for this
    /// service and this very request.
    package func verify(
        _ token: String, accepted: Set<String>, method: String, target: String, body: ByteBuffer?, now: Date = Date()
    ) async -> Result<String, Refusal> {
        guard let caller = Self.unverifiedSubject(of: token) else { return .failure(.malformed) }
        guard accepted.contains(caller), let collection = keys[caller] else { return .failure(.callerNotAccepted(caller)) }
        let claims: CallerTokenClaims
        do {
            claims = try await collection.verify(token, as: CallerTokenClaims.self)
        } catch let error as JWTError where error.errorType == .claimVerificationFailure {
            return .failure(.expired)
        } catch {
            return .failure(.badSignature)
        }
        guard claims.sub.value == caller else { return .failure(.badSignature) }
        guard claims.aud.value == [audience] else { return .failure(.wrongAudience) }
        // Issued in the future or meant to live longer than any token we make: not one of ours.
        let expires = claims.exp.value
        guard claims.iat.value <= now.addingTimeInterval(5), expires.timeIntervalSince(claims.iat.value) <= CallerIdentity.lifetime + 1
        else { return .failure(.expired) }
        guard claims.req == CallerTokenClaims.requestDigest(method: method, target: target, body: body) else {
            return .failure(.wrongRequest)
        }
        let fresh = seen.withLock { seen in
            if seen.count >= seenLimit { seen = seen.filter { $0.value > now } }
            guard seen.count < seenLimit else { return false }  // flooded with live tokens: refuse rather than forget one
            return seen.updateValue(expires, forKey: "\(caller)/\(claims.jti.value)") == nil
        }
        return fresh ? .success(caller) : .failure(.replayed)
    }

    /// The `sub` of a JWT before it is verified: only to pick the key to verify it with.
    private static func unverifiedSubject(of token: String) -> String? {
        struct Subject: Decodable { var sub: String }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let data = Data(base64URLEncoded: parts[1]) else { return nil }
        return (try? JSONDecoder().decode(Subject.self, from: data))?.sub
    }
}

/// The service whose caller token `RequireCaller` verified for the request being handled, for
/// handlers that answer several callers but trust each with different things (`EventReceiver`).
package enum VerifiedCaller {
    @TaskLocal package static var name: String?
}

/// Lets through only requests carrying a caller token of one of `accepted`, made for this service
/// and this request; 401 `CALLER_NOT_ALLOWED` otherwise, whatever else the request carries.
package struct RequireCaller<Context: RequestContext>: RouterMiddleware {
    private let keys: CallerKeys
    private let accepted: Set<String>
    private let maxBodyBytes: Int

    package init(_ accepted: Set<String>, keys: CallerKeys, maxBodyBytes: Int = 1 << 20) {
        self.keys = keys
        self.accepted = accepted
        self.maxBodyBytes = maxBodyBytes
    }

    package func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let token = request.headers[.xCallerToken] else { throw Self.refused }
        var request = request
        // The token covers the body, so read it first (internal bodies are small); the handler gets it as read.
        let body = try await request.collectBody(upTo: maxBodyBytes)
        let result = await keys.verify(
            token, accepted: accepted, method: request.method.rawValue, target: request.uri.description,
            body: body.readableBytes > 0 ? body : nil
        )
        switch result {
        case .success(let caller):
            var context = context
            context.logger[metadataKey: "caller"] = .string(caller)
            return try await VerifiedCaller.$name.withValue(caller) { try await next(request, context) }
        case .failure(let refusal):
            context.logger.notice("refused an internal call", metadata: ["reason": "\(refusal)", "path": "\(request.uri.path)"])
            throw Self.refused
        }
    }

    private static var refused: AppError {
        AppError.rejectedCredentials("This route answers only its named callers", code: "CALLER_NOT_ALLOWED")
    }
}
