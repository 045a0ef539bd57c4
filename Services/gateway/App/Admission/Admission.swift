import HTTPTypes
import ServiceCore

/// Everything the gateway decides about a request before anything goes upstream: the route, the
/// credential the route asks for and the limit it counts against. Plain Swift, apart from any
/// transport, so the data plane calls it on its event loop and tests call it directly.
struct Admission: Sendable {
    let verifier: AccessTokenVerifier
    let limiter: RateLimiter
    let limits: RateLimits

    /// The parts of a request admission looks at.
    struct Request: Sendable {
        var method: HTTPRequest.Method
        /// The request target's path as sent (not yet normalised), without the query.
        var path: String
        var sessionID: String?
        var authorization: String?
        /// The client's address (`ClientAddress.resolve`); the limiter counts IPv6 clients by /64.
        var clientAddress: String
    }

    /// A request that may go upstream.
    struct Forward: Sendable {
        var service: PublicService
        /// The normalised path.
        var path: String
        var access: Access
        var limit: RateLimitDecision
        /// The limiter scope the request counted against, named in `RateLimit-Policy`.
        var policy: String
    }

    enum Outcome: Sendable {
        case forward(Forward)
        /// `OPTIONS` on a known path.
        case options(allow: String)
        case refuse(AppError)
    }

    /// What to do next: an outcome now, or a token to verify first (its claims were not cached).
    enum Step: Sendable {
        case done(Outcome)
        case verify(token: String, then: @Sendable (Result<AccessTokenClaims, any Error>) -> Outcome)
    }

    func begin(_ request: Request) -> Step {
        guard let path = PathNormalizer.normalize(request.path) else {
            return .done(.refuse(.badRequest("Malformed request path", code: "BAD_PATH")))
        }
        let decision = PathNormalizer.isInternal(path)
            ? .notFound : RouteRules.decide(method: request.method, path: path, sessionID: request.sessionID)
        switch decision {
        case .notFound:
            return .done(.refuse(.notFound()))
        case .methodNotAllowed(let allow):
            return .done(.refuse(AppError(
                .methodNotAllowed, code: "METHOD_NOT_ALLOWED",
                detail: "Method \(request.method.rawValue) is not allowed here; use \(allow)", headers: [.allow: allow]
            )))
        case .options(let allow):
            return .done(.options(allow: allow))
        case .forward(let service, let access):
            return admit(request, service: service, path: path, access: access)
        }
    }

    /// `begin`, with any token verification awaited.
    func admit(_ request: Request) async -> Outcome {
        switch begin(request) {
        case .done(let outcome):
            return outcome
        case .verify(let token, let then):
            do {
                return then(.success(try await verifier.verify(token)))
            } catch {
                return then(.failure(error))
            }
        }
    }

    /// Requests whose credential cannot be checked here (a widget session id) and requests with a
    /// bad token also count against the client address, so made-up session ids or garbage tokens
    /// do not buy unlimited attempts.
    private func admit(_ request: Request, service: PublicService, path: String, access: Access) -> Step {
        let address = ClientAddress.limiterKey(for: request.clientAddress)
        let forward: @Sendable (String, RateLimitDecision) -> Outcome = { policy, limit in
            limit.allowed
                ? .forward(Forward(service: service, path: path, access: access, limit: limit, policy: policy))
                : .refuse(Self.limited(limit, policy: policy))
        }
        switch access {
        case .credentials:
            return .done(forward("auth", limiter.check(key: "auth|\(address)", limit: limits.authPerMinute)))
        case .open:
            return .done(forward("ip", limiter.check(key: "ip|\(address)", limit: limits.publicPerMinute)))
        case .session(let sessionID):
            let byAddress = limiter.check(key: "ip|\(address)", limit: limits.publicPerMinute)
            guard byAddress.allowed else { return .done(.refuse(Self.limited(byAddress, policy: "ip"))) }
            return .done(forward("session", limiter.check(key: "session|\(sessionID.prefix(128))", limit: limits.sessionPerMinute)))
        case .authenticated:
            guard let token = JWTAuthMiddleware<GatewayRequestContext>.bearerToken(request.authorization) else {
                return .done(refused(.unauthorized(), address: address))
            }
            let verified: @Sendable (Result<AccessTokenClaims, any Error>) -> Outcome = { result in
                switch result {
                case .success(let claims):
                    return forward("tenant", limiter.check(key: "tenant|\(claims.tenantID)", limit: limits.tenantPerMinute))
                case .failure(let error as AppError) where error.status == .unauthorized:
                    return refused(error, address: address)
                case .failure(let error):
                    return .refuse(AppError.from(error))
                }
            }
            if let claims = verifier.cachedClaims(token) { return .done(verified(.success(claims))) }
            return .verify(token: token, then: verified)
        }
    }

    /// A refused credential costs an attempt against the client address; past its limit, 429.
    private func refused(_ error: AppError, address: String) -> Outcome {
        let byAddress = limiter.check(key: "ip|\(address)", limit: limits.publicPerMinute)
        return .refuse(byAddress.allowed ? error : Self.limited(byAddress, policy: "ip"))
    }

    /// 429 with the limit's headers, `Retry-After` among them.
    static func limited(_ decision: RateLimitDecision, policy: String) -> AppError {
        var headers = HTTPFields()
        for (name, value) in RateLimitHeaderValues(decision, policyName: policy).fields {
            headers.append(HTTPField(name: HTTPField.Name(name)!, value: value))
        }
        return AppError(
            .tooManyRequests, code: "RATE_LIMITED",
            detail: "Rate limit exceeded. Try again in \(decision.retryAfter) seconds.", headers: headers
        )
    }
}
