import Foundation
import Hummingbird
import InternalAPI
import ServiceCore

/// `POST /internal/gateway/api-keys/exchange`: the gateway trades an API key a client presented for
/// an ordinary access token, so services only ever see access tokens. Only the gateway may call it
/// (`RequireCaller`, by its own key); it caches the token for most of its short life.
struct GatewayAPIKeysController: Sendable {
    let keys: any APIKeyRepository
    let issuer: TokenIssuer
    /// The longest life of a token minted for a key (never past the key's own expiry).
    let tokenLifetime: Duration

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        group.post("api-keys/exchange", use: exchange)
    }

    @Sendable func exchange(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<APIKeyExchangeReply> {
        let input = try await request.decodeJSON(as: APIKeyExchangeRequest.self, context: context)
        guard let secret = APIKeySecret.parse(input.key) else { throw Self.unknown }
        switch try await keys.use(secret, logger: context.logger) {
        case .unknown: throw Self.unknown
        case .revoked: throw Self.revoked
        case .expired: throw Self.expired
        case .valid(let key, let creator):
            let now = Date()
            var lifetime = tokenLifetime.inSeconds
            if let expiresAt = key.expiresAt { lifetime = min(lifetime, expiresAt.timeIntervalSince(now).rounded(.down)) }
            guard lifetime >= 1 else { throw Self.expired }
            // The key's role, but never more than its maker has now; `ver` is theirs, so a role change,
            // a password change or a deletion voids the token at once and the gateway asks again.
            let claims = AccessTokenClaims(
                userID: creator.id, tenantID: key.tenantID, email: creator.email, role: min(key.role, creator.role), issuedAt: now,
                lifetime: lifetime, sessionID: key.id, tokenVersion: creator.tokenVersion
            )
            return JSONResponse(APIKeyExchangeReply(accessToken: try await issuer.issue(claims), expiresIn: Int(lifetime)))
        }
    }

    static let unknown = AppError.rejectedCredentials("Invalid API key", code: "INVALID_API_KEY")
    static let revoked = AppError.rejectedCredentials("This API key has been revoked", code: "API_KEY_REVOKED")
    static let expired = AppError.rejectedCredentials("This API key has expired", code: "API_KEY_EXPIRED")
}
