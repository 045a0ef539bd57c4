import Foundation
import HTTPTypes
import Hummingbird

/// Requires `Authorization: Bearer <access token>` and puts the verified claims in the context.
package struct JWTAuthMiddleware<Context: ServiceRequestContext>: RouterMiddleware {
    let verifier: AccessTokenVerifier

    package init(verifier: AccessTokenVerifier) {
        self.verifier = verifier
    }

    package func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        guard let token = Self.bearerToken(request.headers[.authorization]) else {
            throw AppError.unauthorized()
        }
        var context = context
        context.identity = try await verifier.verify(token)
        return try await next(request, context)
    }

    /// The token of a `Bearer` authorization header, scheme matched case-insensitively.
    ///
    /// Works on UTF-8 bytes: this runs on every request, and `String.count` or
    /// `trimmingCharacters` over a ~700-byte token showed up in the gateway's profile.
    package static func bearerToken(_ header: String?) -> String? {
        guard let header else { return nil }
        let bytes = header.utf8
        let scheme = "bearer ".utf8
        guard bytes.count > scheme.count,
            zip(bytes.prefix(scheme.count), scheme).allSatisfy({ byte, expected in byte | 0x20 == expected })
        else { return nil }
        let token = bytes.dropFirst(scheme.count).drop(while: { $0 == 0x20 })
        let trimmed = token.reversed().drop(while: { $0 == 0x20 }).count
        guard trimmed > 0 else { return nil }
        return String(decoding: token.prefix(trimmed), as: UTF8.self)
    }
}
