import HTTPTypes
import Hummingbird
import ServiceCore

/// CORS for the configured origins (`CORS_ORIGINS`, `*` for any): preflights answered here,
/// allowed origins echoed on every answer with credentials allowed.
struct CORSMiddleware<Context: RequestContext>: RouterMiddleware {
    let allowAny: Bool
    let origins: Set<String>

    init(origins: [String]) {
        self.allowAny = origins.contains("*")
        self.origins = Set(origins.map { $0.lowercased() })
    }

    private static var allowedHeaders: String { "Authorization, Content-Type, X-Session-ID, X-Tenant-Slug, X-Request-ID, Idempotency-Key" }
    private static var exposedHeaders: String { "X-Request-ID, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After" }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let origin = request.headers[.origin] else { return try await next(request, context) }
        let allowed = allowAny || origins.contains(origin.lowercased())
        if request.method == .options, request.headers[.accessControlRequestMethod] != nil {
            guard allowed else {
                return try AppError(.forbidden, code: "CORS_ORIGIN_NOT_ALLOWED", detail: "Origin \(origin) is not allowed")
                    .response(from: request, context: context)
            }
            var response = Response(status: .noContent)
            response.headers[.accessControlAllowMethods] = "GET, POST, PUT, PATCH, DELETE, OPTIONS"
            response.headers[.accessControlAllowHeaders] = request.headers[.accessControlRequestHeaders] ?? Self.allowedHeaders
            response.headers[.accessControlMaxAge] = "600"
            decorate(&response, origin: origin)
            return response
        }
        var response = try await next(request, context)
        if allowed { decorate(&response, origin: origin) }
        return response
    }

    private func decorate(_ response: inout Response, origin: String) {
        response.headers[.accessControlAllowOrigin] = origin
        response.headers[.accessControlAllowCredentials] = "true"
        response.headers[.accessControlExposeHeaders] = Self.exposedHeaders
        response.headers[values: .vary].append("Origin")
    }
}
