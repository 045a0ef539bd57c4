import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import ServiceCore

/// Everything that is not the gateway's own: normalise the path, refuse `/internal`, pick the
/// upstream, check the token or session, count against the right limit, then stream the request
/// to the upstream and its answer back, neither body held whole.
struct ProxyController: Sendable {
    let upstreams: [Upstream.Name: Upstream]
    let http: HTTPClient
    let verifier: AccessTokenVerifier
    let limiter: RateLimiter
    let limits: RateLimits
    let monitor: UpstreamMonitor
    let upstreamTimeout: TimeAmount
    let bodyLimits: ForwardedBody.Limits
    let trustForwardedFor: Bool

    /// The proxy runs as the router's last middleware, so it sees every method (TRACE and QUERY too)
    /// and every path; only GET on the gateway's own routes goes on to the router.
    func addRoutes(to router: Router<GatewayRequestContext>) {
        router.add(middleware: ProxyMiddleware(proxy: self))
    }

    struct ProxyMiddleware: RouterMiddleware {
        let proxy: ProxyController

        func handle(
            _ request: Request,
            context: GatewayRequestContext,
            next: (Request, GatewayRequestContext) async throws -> Response
        ) async throws -> Response {
            if request.method == .get || request.method == .head, RouteRules.gatewayPaths.contains(request.uri.path) {
                return try await next(request, context)
            }
            return try await proxy.handle(request, context: context)
        }
    }

    func handle(_ request: Request, context: GatewayRequestContext) async throws -> Response {
        guard let path = PathNormalizer.normalize(request.uri.path) else {
            throw AppError.badRequest("Malformed request path", code: "BAD_PATH")
        }
        let route = PathNormalizer.isInternal(path)
            ? .notFound : RouteRules.decide(method: request.method, path: path, sessionID: request.headers[.xSessionID])
        let name: Upstream.Name
        let access: Access
        switch route {
        case .notFound:
            throw AppError.notFound()
        case .methodNotAllowed(let allow):
            throw AppError(
                .methodNotAllowed, code: "METHOD_NOT_ALLOWED",
                detail: "Method \(request.method.rawValue) is not allowed here; use \(allow)", headers: [.allow: allow]
            )
        case .options(let allow):
            return Response(status: .noContent, headers: [.allow: allow])
        case .forward(let service, let routeAccess):
            name = service
            access = routeAccess
        }
        guard let upstream = upstreams[name] else { throw AppError.notFound() }
        context.coreContext.endpointPath.value = "proxy:\(name.rawValue)"

        let decision = try await admit(request, access: access, context: context)
        guard decision.allowed else {
            var headers = Self.rateLimitHeaders(decision)
            headers[.retryAfter] = String(decision.retryAfter)
            throw AppError(
                .tooManyRequests, code: "RATE_LIMITED",
                detail: "Rate limit exceeded. Try again in \(decision.retryAfter) seconds.", headers: headers
            )
        }
        var response = try await forward(request, path: path, to: upstream, context: context)
        for field in Self.rateLimitHeaders(decision) { response.headers[field.name] = field.value }
        return response
    }

    /// Verifies what the route requires and counts the request against its limiter scope.
    ///
    /// Requests whose credential cannot be checked before the upstream (a widget session id) and
    /// requests with a bad token also count against the client address, so made-up session ids
    /// or garbage tokens do not buy unlimited attempts.
    private func admit(_ request: Request, access: Access, context: GatewayRequestContext) async throws -> RateLimitDecision {
        let address = clientAddress(request, context)
        let perAddress = { limiter.check(key: "ip|\(address)", limit: limits.publicPerMinute) }
        switch access {
        case .credentials:
            return limiter.check(key: "auth|\(address)", limit: limits.authPerMinute)
        case .open:
            return perAddress()
        case .session(let sessionID):
            let byAddress = perAddress()
            guard byAddress.allowed else { return byAddress }
            return limiter.check(key: "session|\(sessionID.prefix(128))", limit: limits.sessionPerMinute)
        case .authenticated:
            do {
                guard let token = JWTAuthMiddleware<GatewayRequestContext>.bearerToken(request.headers[.authorization]) else {
                    throw AppError.unauthorized()
                }
                let claims = try await verifier.verify(token)
                return limiter.check(key: "tenant|\(claims.tenantID)", limit: limits.tenantPerMinute)
            } catch let error as AppError where error.status == .unauthorized {
                let byAddress = perAddress()
                guard byAddress.allowed else { return byAddress }
                throw error
            }
        }
    }

    private func clientAddress(_ request: Request, _ context: GatewayRequestContext) -> String {
        if trustForwardedFor, let forwarded = request.headers[.xForwardedFor],
            let last = forwarded.split(separator: ",").last?.trimmingCharacters(in: .whitespaces), !last.isEmpty
        {
            return last
        }
        return context.remoteAddress ?? "unknown"
    }

    private func forward(_ request: Request, path: String, to upstream: Upstream, context: GatewayRequestContext) async throws -> Response {
        let query = request.uri.query.map { "?\($0)" } ?? ""
        var outbound = HTTPClientRequest(url: upstream.baseURL + PathNormalizer.encodeForUpstream(path) + query)
        outbound.method = HTTPMethod(rawValue: request.method.rawValue)
        outbound.headers = forwardedHeaders(request, context: context)
        // See ForwardedBody: from here on, the client's body is read only by tasks this handler ends.
        let body = try await ForwardedBody.read(request, limits: bodyLimits)
        outbound.body = body.outbound

        let upstreamResponse: HTTPClientResponse
        do {
            upstreamResponse = try await http.execute(outbound, deadline: .now() + upstreamTimeout, logger: context.logger)
        } catch {
            await body.finish()
            throw body.clientFailure ?? publicError(error, upstream: upstream, context: context)
        }
        monitor.markUp(upstream.name)

        var headers = HTTPFields()
        for header in upstreamResponse.headers where !Self.isHopByHop(header.name) {
            if let name = HTTPField.Name(header.name) { headers.append(HTTPField(name: name, value: header.value)) }
        }
        return Response(
            status: HTTPResponse.Status(code: Int(upstreamResponse.status.code), reasonPhrase: upstreamResponse.status.reasonPhrase),
            headers: headers,
            body: ResponseBody { writer in
                // The upstream's answer streams through as it comes (SSE included); the request
                // body's reader is stopped before Hummingbird may touch the connection again.
                do {
                    for try await chunk in upstreamResponse.body { try await writer.write(chunk) }
                    try await writer.finish(nil)
                } catch {
                    await body.finish()
                    throw error
                }
                await body.finish()
            }
        )
    }

    /// What the client hears when the upstream could not be asked or did not answer.
    private func publicError(_ error: any Error, upstream: Upstream, context: GatewayRequestContext) -> any Error {
        switch error {
        case let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout:
            context.logger.warning("upstream timed out", metadata: ["upstream": "\(upstream.name.rawValue)"])
            return InternalCallError.timedOut(service: upstream.name.rawValue).publicError
        default:
            monitor.markDown(upstream.name, reason: "\(error)")
            context.logger.warning("upstream unavailable", metadata: ["upstream": "\(upstream.name.rawValue)", "error": "\(error)"])
            return InternalCallError.unavailable(service: upstream.name.rawValue, reason: "\(error)").publicError
        }
    }

    private func forwardedHeaders(_ request: Request, context: GatewayRequestContext) -> HTTPHeaders {
        var headers = HTTPHeaders()
        let connectionTokens = Set(
            (request.headers[.connection] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        )
        for field in request.headers {
            let name = field.name.canonicalName
            if Self.isHopByHop(name) || connectionTokens.contains(name) || Self.neverForwarded.contains(name) { continue }
            if !trustForwardedFor && name.hasPrefix("x-forwarded-") { continue }
            headers.add(name: field.name.rawName, value: field.value)
        }
        let peer = context.remoteAddress ?? "unknown"
        if let existing = headers.first(name: "X-Forwarded-For") {
            headers.replaceOrAdd(name: "X-Forwarded-For", value: "\(existing), \(peer)")
        } else {
            headers.add(name: "X-Forwarded-For", value: peer)
        }
        if !headers.contains(name: "X-Forwarded-Proto") { headers.add(name: "X-Forwarded-Proto", value: "http") }
        if let host = request.head.authority { headers.replaceOrAdd(name: "X-Forwarded-Host", value: host) }
        return headers
    }

    private static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade",
        "proxy-connection",
    ]

    /// Set by the HTTP client itself, or never to be accepted from outside.
    private static let neverForwarded: Set<String> = ["host", "content-length", "x-service-token"]

    static func isHopByHop(_ name: String) -> Bool { hopByHop.contains(name.lowercased()) }

    static func rateLimitHeaders(_ decision: RateLimitDecision) -> HTTPFields {
        [
            HTTPField.Name("X-RateLimit-Limit")!: String(decision.limit),
            HTTPField.Name("X-RateLimit-Remaining")!: String(decision.remaining),
            HTTPField.Name("X-RateLimit-Reset")!: String(decision.resetAt),
        ]
    }
}

extension HTTPField.Name {
    static let xForwardedFor = HTTPField.Name("X-Forwarded-For")!
}
