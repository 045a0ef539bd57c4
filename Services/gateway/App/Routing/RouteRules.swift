import HTTPTypes
import ServiceCore

/// How the gateway treats a request it may forward: what it must show, which limit it counts against.
enum Access: Equatable {
    /// Credential endpoints (login, register…): no token, the strict per-IP limit.
    case credentials
    /// Open endpoints: no token, the per-IP public limit.
    case open
    /// Widget endpoints called with `X-Session-ID`: limited per session; chat checks the session.
    case session(String)
    /// Everything else: a verified access token, limited per tenant.
    case authenticated
}

/// The gateway's reading of `PublicRoutes`, the one table of public endpoints.
enum RouteRules {
    enum Decision: Equatable {
        /// No public route has this path.
        case notFound
        /// The path exists, not with this method; `allow` lists the methods it has.
        case methodNotAllowed(allow: String)
        /// `OPTIONS` on a known path: answered here with `Allow`.
        case options(allow: String)
        case forward(PublicService, Access)
    }

    /// The public port's own routes, answered by the data plane (GET only); `/metrics` and the
    /// detailed `/health` are on the admin port.
    static let gatewayPaths: Set<String> = ["/health", "/live", "/ready"]

    static func decide(method: HTTPRequest.Method, path: String, sessionID: String?) -> Decision {
        guard let routes = PublicRoutes.routes(for: path) else {
            return gatewayPaths.contains(path) ? .methodNotAllowed(allow: "GET") : .notFound
        }
        // HEAD is GET without the body, wherever GET is declared.
        let lookup: HTTPRequest.Method = method == .head ? .get : method
        guard let route = routes.first(where: { $0.method == lookup }) else {
            let allow = routes.map(\.method.rawValue).joined(separator: ", ")
            return method == .options ? .options(allow: allow) : .methodNotAllowed(allow: allow)
        }
        switch route.access {
        case .credentials: return .forward(route.service, .credentials)
        case .open: return .forward(route.service, .open)
        case .authenticated: return .forward(route.service, .authenticated)
        case .session:
            if let sessionID, !sessionID.isEmpty { return .forward(route.service, .session(sessionID)) }
            return .forward(route.service, .authenticated)
        }
    }
}
