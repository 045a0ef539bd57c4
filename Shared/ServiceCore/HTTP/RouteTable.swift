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
