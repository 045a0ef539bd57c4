import Hummingbird
import Logging

/// Renders every error as the suite's JSON error body; logs server-side failures once.
package struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    package init() {}

    package func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let appError = AppError.from(error)
            if appError.status.code >= 500 {
                context.logger.error(
                    "request failed",
                    metadata: [
                        "error": "\(String(reflecting: error))", "method": "\(request.method)", "path": "\(request.uri.path)",
                    ]
                )
            }
            return try appError.response(from: request, context: context)
        }
    }
}
