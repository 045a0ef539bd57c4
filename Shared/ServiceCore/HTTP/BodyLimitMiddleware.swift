import HTTPTypes
import Hummingbird

/// Applies the configured body limit: early 413 on a declared length, and the decode limit otherwise.
/// A route listed in `routeLimits` (by its path, e.g. `/api/branding/upload`) gets its own limit
/// instead, so one upload route can take more than every other route may.
package struct BodyLimitMiddleware<Context: ServiceRequestContext>: RouterMiddleware {
    let maxBytes: Int
    let routeLimits: [String: Int]

    package init(maxBytes: Int, routeLimits: [String: Int] = [:]) {
        self.maxBytes = maxBytes
        self.routeLimits = Dictionary(uniqueKeysWithValues: routeLimits.map { (Self.normalised($0.key), $0.value) })
    }

    package func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let limit = routeLimits.isEmpty ? maxBytes : context.endpointPath.flatMap { routeLimits[Self.normalised($0)] } ?? maxBytes
        if let declared = request.headers[.contentLength].flatMap(Int.init), declared > limit {
            throw AppError.payloadTooLarge(limit: limit)
        }
        var context = context
        context.maxUploadSize = limit
        return try await next(request, context)
    }

    private static func normalised(_ path: String) -> String {
        String(path.drop { $0 == "/" })
    }
}
