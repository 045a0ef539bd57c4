import HTTPTypes
import Hummingbird

/// Applies the configured body limit: early 413 on a declared length, and the decode limit otherwise.
package struct BodyLimitMiddleware<Context: ServiceRequestContext>: RouterMiddleware {
    let maxBytes: Int

    package init(maxBytes: Int) {
        self.maxBytes = maxBytes
    }

    package func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        if let declared = request.headers[.contentLength].flatMap(Int.init), declared > maxBytes {
            throw AppError.payloadTooLarge(limit: maxBytes)
        }
        var context = context
        context.maxUploadSize = maxBytes
        return try await next(request, context)
    }
}
