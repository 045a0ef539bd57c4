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
    package static func bearerToken(_ header: String?) -> String? {
        guard let header, header.count > 7, header.prefix(7).lowercased() == "bearer " else { return nil }
        let token = header.dropFirst(7).trimmingCharacters(in: .whitespaces)
        return token.isEmpty ? nil : token
    }
}
