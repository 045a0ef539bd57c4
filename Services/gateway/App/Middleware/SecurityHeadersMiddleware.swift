import HTTPTypes
import Hummingbird

/// Seed 000's security headers on every answer, the gateway's own and proxied ones alike.
struct SecurityHeadersMiddleware<Context: RequestContext>: RouterMiddleware {
    static var headers: [(HTTPField.Name, String)] {
        [
            (.contentSecurityPolicy, "default-src 'none'; frame-ancestors 'none'"),
            (.strictTransportSecurity, "max-age=31536000; includeSubDomains"),
            (HTTPField.Name("X-Content-Type-Options")!, "nosniff"),
            (HTTPField.Name("X-Frame-Options")!, "DENY"),
            (HTTPField.Name("X-XSS-Protection")!, "1; mode=block"),
            (HTTPField.Name("Referrer-Policy")!, "no-referrer"),
        ]
    }

    private let fields = Self.headers

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        for (name, value) in fields where response.headers[name] == nil {
            response.headers[name] = value
        }
        return response
    }
}
