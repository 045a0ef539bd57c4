import Foundation
import HTTPTypes
import Hummingbird
import JWTKit
import Logging
import Synchronization

/// Claims of the short-lived token one service presents to another's `/internal/*` routes.
struct ServiceTokenClaims: JWTPayload {
    static let audience = "internal"

    var sub: SubjectClaim
    var aud: AudienceClaim
    var iat: IssuedAtClaim
    var exp: ExpirationClaim

    func verify(using algorithm: some JWTAlgorithm) throws {
        try exp.verifyNotExpired()
        try aud.verifyIntendedAudience(includes: Self.audience)
    }
}

/// Mints and checks service tokens: HS256 over a secret every service is given
/// (`SERVICE_TOKEN_SECRET`), valid for a minute, naming the calling service.
package final class ServiceTokens: Sendable {
    private let keys: JWTKeyCollection
    private let service: String
    private let cached = Mutex<(token: String, renewAfter: Date)?>(nil)

    package static let minimumSecretLength = 32

    package init(secret: String, service: String) async {
        precondition(secret.utf8.count >= Self.minimumSecretLength, "service token secret too short")
        self.keys = await JWTKeyCollection().add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        self.service = service
    }

    /// A token for outgoing calls, reused for half its lifetime.
    package func token() async throws -> String {
        let now = Date()
        if let cached = cached.withLock({ $0 }), cached.renewAfter > now { return cached.token }
        let issued = Date(timeIntervalSince1970: now.timeIntervalSince1970.rounded(.down))
        let claims = ServiceTokenClaims(
            sub: SubjectClaim(value: service),
            aud: AudienceClaim(value: ServiceTokenClaims.audience),
            iat: IssuedAtClaim(value: issued),
            exp: ExpirationClaim(value: issued.addingTimeInterval(60))
        )
        let token = try await keys.sign(claims)
        cached.withLock { $0 = (token, issued.addingTimeInterval(30)) }
        return token
    }

    /// The calling service's name, or nil when the token is missing, forged or expired.
    package func verify(_ token: String) async -> String? {
        guard let claims = try? await keys.verify(token, as: ServiceTokenClaims.self) else { return nil }
        return claims.sub.value
    }
}

/// Guards `/internal/*`: no valid service token, no entry (401), whatever else the request carries.
package struct InternalAuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let tokens: ServiceTokens

    package init(tokens: ServiceTokens) {
        self.tokens = tokens
    }

    package func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        guard let token = request.headers[.xServiceToken], let caller = await tokens.verify(token) else {
            throw AppError.rejectedCredentials("A valid service token is required", code: "SERVICE_TOKEN_REQUIRED")
        }
        var context = context
        context.logger[metadataKey: "caller"] = .string(caller)
        return try await next(request, context)
    }
}
