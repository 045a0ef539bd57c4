import HTTPTypes
import Hummingbird

/// Wraps a `Router` and remembers which methods each path answers, so that a known path asked
/// with another method gets 405 with `Allow` instead of Hummingbird's 404.
package final class RouteTable<Context: RequestContext>: RouterMethods {
    package let router: Router<Context>
    private var paths: [(path: RouterPath, methods: [HTTPRequest.Method])] = []

    package init(router: Router<Context>) {
        self.router = router
    }

    @discardableResult
    package func on<Responder: HTTPResponder>(
        _ path: RouterPath,
        method: HTTPRequest.Method,
        responder: Responder
    ) -> Self where Responder.Context == Context {
        router.on(path, method: method, responder: responder)
        if let index = paths.firstIndex(where: { $0.path.description == path.description }) {
            paths[index].methods.append(method)
        } else {
            paths.append((path, [method]))
        }
        return self
    }

    @discardableResult
    package func add(middleware: any MiddlewareProtocol<Request, Response, Context>) -> Self {
        router.add(middleware: middleware)
        return self
    }

    /// Every route added, as `METHOD /path` with `:name` parameters.
    package var routes: [String] {
        paths.flatMap { path, methods in
            // Hummingbird describes a parameter as `{name}`; the table writes `:name`.
            let text = "/" + path.description.drop(while: { $0 == "/" }).split(separator: "/", omittingEmptySubsequences: false).map { segment in
                segment.hasPrefix("{") && segment.hasSuffix("}") ? ":" + segment.dropFirst().dropLast() : String(segment)
            }.joined(separator: "/")
            return methods.map { "\($0.rawValue) \(text)" }
        }
    }

    /// Stops start-up when this service's public routes and `PublicRoutes` disagree: a route the
    /// gateway would never forward, or one it forwards to nobody.
    package func checkPublicRoutes(service: String, ownPaths: Set<String>) {
        guard let service = PublicService(rawValue: service) else { return }
        let registered = Set(routes.filter { route in
            let path = route.split(separator: " ", maxSplits: 1).last.map(String.init) ?? ""
            return !ownPaths.contains(path) && path != "/internal" && !path.hasPrefix("/internal/")
        })
        let declared = Set(PublicRoutes.all.filter { $0.service == service }.map { "\($0.method.rawValue) \($0.path)" })
        guard registered == declared else {
            preconditionFailure(
                """
                \(service.rawValue): public routes disagree with PublicRoutes.all; \
                not declared: \(registered.subtracting(declared).sorted()), not registered: \(declared.subtracting(registered).sorted())
                """
            )
        }
    }

    /// Call once every route is added.
    package func answerUnsupportedMethods() {
        let candidates: [HTTPRequest.Method] = [.get, .post, .put, .patch, .delete]
        for (path, methods) in paths {
            let allowed = methods.map(\.rawValue).joined(separator: ", ")
            for method in candidates where !methods.contains(method) {
                router.on(path, method: method, responder: MethodNotAllowedResponder<Context>(allowed: allowed))
            }
        }
    }
}

struct MethodNotAllowedResponder<Context: RequestContext>: HTTPResponder {
    let allowed: String

    func respond(to request: Request, context: Context) throws -> Response {
        throw AppError(
            .methodNotAllowed,
            code: "METHOD_NOT_ALLOWED",
            detail: "Method \(request.method.rawValue) is not allowed here; use \(allowed)",
            headers: [.allow: allowed]
        )
    }
}
