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

    /// The token of a `Bearer` authorization header, scheme matched case-insensitively, spaces
    /// around the token dropped.
    ///
    /// Walks UTF-8 indices and copies the token once: this runs on every request, and `String.count`,
    /// `trimmingCharacters` or a reversed walk over a ~700-byte token showed up in the gateway's profile.
    package static func bearerToken(_ header: String?) -> String? {
        guard let header else { return nil }
        let utf8 = header.utf8
        var start = utf8.startIndex
        for expected in "bearer ".utf8 {
            guard start != utf8.endIndex, utf8[start] | 0x20 == expected else { return nil }
            utf8.formIndex(after: &start)
        }
        while start != utf8.endIndex, utf8[start] == 0x20 { utf8.formIndex(after: &start) }
        var end = utf8.endIndex
        while end > start, utf8[utf8.index(before: end)] == 0x20 { utf8.formIndex(before: &end) }
        // Both ends sit next to ASCII bytes (the scheme, a space, or the string's ends), so they
        // are character boundaries and the slice is copied, not decoded again.
        guard start < end else { return nil }
        return String(header[start..<end])
    }
}
