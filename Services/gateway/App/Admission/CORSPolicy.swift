import Foundation
import HTTPTypes
import ServiceCore

/// Cross-origin rules for the configured origins (`CORS_ORIGINS`). Listed origins are echoed with
/// credentials allowed; `*` lets any other origin read answers, never with credentials (browsers
/// refuse that pair, and echoing every origin with credentials would hand any site the user's
/// session). Preflights are answered by the gateway and promise only what it lets through.
///
/// Tenants' own origins (their `allowed_origins`, from the tenant-policy feed) are let through too,
/// on the widget's routes only (those that take no access token: widget sessions, chat, public
/// widget configuration and themes), without credentials. Which tenant a call is for is not known
/// here (a preflight carries no header values): chat checks the `Origin` against the session's own
/// tenant when the session starts, so a page of one tenant cannot open another tenant's widget.
struct CORSPolicy: Sendable {
    static let allowedMethods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    static let allowedHeaders = ["Authorization", "Content-Type", "X-Session-ID", "X-Tenant-Slug", "X-Request-ID", "Idempotency-Key"]
    static let exposedHeaders = "X-Request-ID, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, RateLimit, RateLimit-Policy, Retry-After"

    private let allowAny: Bool
    private let origins: Set<String>
    private let allowedHeaderNames = Set(Self.allowedHeaders.map { $0.lowercased() })
    /// Whether some tenant runs its widget on an origin; nil: no tenant origins.
    private let widgetOrigin: (@Sendable (String) -> Bool)?

    init(origins: [String], widgetOrigin: (@Sendable (String) -> Bool)? = nil) {
        self.allowAny = origins.contains("*")
        self.origins = Set(origins.filter { $0 != "*" }.map { $0.lowercased() })
        self.widgetOrigin = widgetOrigin
    }

    /// Whether `path` is one of the widget's routes: every route it answers takes no access token.
    static func isWidgetRoute(_ path: String?) -> Bool {
        guard let path, let routes = PublicRoutes.routes(for: path) else { return false }
        return routes.allSatisfy { $0.access == .open || $0.access == .session }
    }

    enum Preflight {
        case allow([(String, String)])
        case refuse(AppError)
    }

    /// The answer to `OPTIONS` with `Origin` and `Access-Control-Request-Method`.
    func preflight(origin: String, requestMethod: String, requestHeaders: String?, widgetRoute: Bool = false) -> Preflight {
        guard var headers = originHeaders(origin, widgetRoute: widgetRoute) else {
            return .refuse(AppError(.forbidden, code: "CORS_ORIGIN_NOT_ALLOWED", detail: "Origin \(origin) is not allowed"))
        }
        guard Self.allowedMethods.contains(requestMethod) else {
            return .refuse(AppError(
                .forbidden, code: "CORS_METHOD_NOT_ALLOWED",
                detail: "Method \(requestMethod) is not allowed cross-origin; allowed: \(Self.allowedMethods.joined(separator: ", "))"
            ))
        }
        let asked = (requestHeaders ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        if let refused = asked.first(where: { !$0.isEmpty && !allowedHeaderNames.contains($0) }) {
            return .refuse(AppError(
                .forbidden, code: "CORS_HEADER_NOT_ALLOWED",
                detail: "Header \(refused) is not allowed cross-origin; allowed: \(Self.allowedHeaders.joined(separator: ", "))"
            ))
        }
        headers.append(("Access-Control-Allow-Methods", Self.allowedMethods.joined(separator: ", ")))
        headers.append(("Access-Control-Allow-Headers", Self.allowedHeaders.joined(separator: ", ")))
        headers.append(("Access-Control-Max-Age", "600"))
        return .allow(headers)
    }

    /// Headers for an ordinary answer to a request from `origin`; nil when the origin may not read it.
    func responseHeaders(origin: String, widgetRoute: Bool = false) -> [(String, String)]? {
        guard var headers = originHeaders(origin, widgetRoute: widgetRoute) else { return nil }
        headers.append(("Access-Control-Expose-Headers", Self.exposedHeaders))
        return headers
    }

    private func originHeaders(_ origin: String, widgetRoute: Bool) -> [(String, String)]? {
        if origins.contains(origin.lowercased()) {
            return [("Access-Control-Allow-Origin", origin), ("Access-Control-Allow-Credentials", "true"), ("Vary", "Origin")]
        }
        if widgetRoute, let widgetOrigin, widgetOrigin(origin) {
            return [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")]
        }
        return allowAny ? [("Access-Control-Allow-Origin", "*")] : nil
    }
}
