import Foundation
import HTTPTypes
import InternalAPI
import JWTKit
import ServiceCore

/// Everything the gateway decides about a request before anything goes upstream: the route, the
/// credential the route asks for and the limit it counts against. Plain Swift, apart from any
/// transport, so the data plane calls it on its event loop and tests call it directly.
///
/// A class: each decision's continuations capture it, and a struct of this many references was
/// copied (a retain and a release each) on every request.
final class Admission: Sendable {
    let verifier: AccessTokenVerifier
    let limiter: any RequestLimiter
    let limits: RateLimits
    /// Per-tenant status and limits from tenancy; nil when the gateway has no key to ask for them.
    let tenantPolicies: TenantPolicies?
    /// Sessions and users auth has voided; nil when the gateway has no key to ask for them.
    let revocations: Revocations?
    /// Access tokens for API keys, from auth; nil when the gateway has no key to ask auth with.
    let apiKeys: APIKeyTokens?

    init(
        verifier: AccessTokenVerifier, limiter: any RequestLimiter, limits: RateLimits, tenantPolicies: TenantPolicies? = nil,
        revocations: Revocations? = nil, apiKeys: APIKeyTokens? = nil
    ) {
        self.verifier = verifier
        self.limiter = limiter
        self.limits = limits
        self.tenantPolicies = tenantPolicies
        self.revocations = revocations
        self.apiKeys = apiKeys
    }

    /// The parts of a request admission looks at.
    struct Request: Sendable {
        var method: HTTPRequest.Method
        /// The request target's path as sent (not yet normalised), without the query.
        var path: String
        var sessionID: String?
        var authorization: String?
        /// `X-API-Key`, used when no `Authorization` is sent.
        var apiKey: String? = nil
        /// The key the limiter counts the client by (`ClientAddress.limiterKey`: IPv6 by /64).
        var clientKey: String
        /// What admission verified for this connection's last request with a token, if any.
        var verified: VerifiedAuthorization? = nil
    }

    /// An `Authorization` a connection sent before, and the claims of its token, verified then. The
    /// same header on the connection's next request skips the token cache's lookup (a lock, a hash
    /// and a copy of the token); the token's expiry, its revocation and its tenant's state are
    /// still checked every time, as for any cached token.
    struct VerifiedAuthorization: Sendable {
        let authorization: String
        let claims: AccessTokenClaims
        /// The limiter's key for the token's tenant, made once rather than per request.
        let tenantKey: String

        init(authorization: String, claims: AccessTokenClaims) {
            self.authorization = authorization
            self.claims = claims
            self.tenantKey = Admission.tenantKey(claims)
        }
    }

    /// The limiter's key for a tenant's requests.
    static func tenantKey(_ claims: AccessTokenClaims) -> String {
        "tenant|\(claims.tenantID)"
    }

    /// A request that may go upstream.
    /// A class: it holds a token's claims and several strings, and a struct of them was copied
    /// (a retain and a release per string) each time it passed from admission to the exchange.
    final class Forward: Sendable {
        let service: PublicService
        /// The normalised path.
        let path: String
        let access: Access
        let limit: RateLimitDecision
        /// The limiter scope the request counted against, named in `RateLimit-Policy`.
        let policy: String
        let authorization: UpstreamAuthorization
        /// The verified access token's claims, on authenticated routes: a WebSocket tunnel opened
        /// with them is closed when they are revoked.
        let claims: AccessTokenClaims?

        init(
            service: PublicService, path: String, access: Access, limit: RateLimitDecision, policy: String,
            authorization: UpstreamAuthorization = .asSent, claims: AccessTokenClaims? = nil
        ) {
            self.service = service
            self.path = path
            self.access = access
            self.limit = limit
            self.policy = policy
            self.authorization = authorization
            self.claims = claims
        }
    }

    /// The `Authorization` the upstream is sent: services see access tokens, never API keys.
    enum UpstreamAuthorization: Sendable, Equatable {
        case asSent
        /// An API key's access token, as `Bearer …`.
        case replaced(String)
        /// An API key on a route that asks for no credential.
        case removed
    }

    enum Outcome: Sendable {
        case forward(Forward)
        /// `OPTIONS` on a known path.
        case options(allow: String)
        case refuse(AppError)
    }

    /// What to do next: an outcome now, or the rest of the decision, to run off the event loop (a
    /// token seen for the first time, a slice of shared quota to lease).
    enum Step: Sendable {
        case done(Outcome)
        case suspended(@Sendable () async -> Step)

        func resolved() async -> Outcome {
            switch self {
            case .done(let outcome): outcome
            case .suspended(let rest): await rest().resolved()
            }
        }
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

    /// `begin`, with whatever it waits for awaited.
    func admit(_ request: Request) async -> Outcome {
        await begin(request).resolved()
    }

    /// Where a request goes if it is admitted: what a `Forward` is made of, besides its limit.
    private struct Plan: Sendable {
        let service: PublicService
        let path: String
        let access: Access
    }

    /// Requests whose credential cannot be checked here (a widget session id) and requests with a
    /// bad token also count against the client address, so made-up session ids or garbage tokens
    /// do not buy unlimited attempts.
    ///
    /// The common paths (a cached token, a limiter that decides in place) make no closure: the
    /// rest of a decision is captured only when it has to wait.
    private func admit(_ request: Request, service: PublicService, path: String, access: Access) -> Step {
        let address = request.clientKey
        let plan = Plan(service: service, path: path, access: access)
        // A route that asks for no credential is not sent an API key someone sent anyway.
        let unasked: UpstreamAuthorization =
            access != .authenticated && request.authorization.map(Self.isBearerAPIKey) == true ? .removed : .asSent
        switch access {
        case .credentials:
            return count("auth|\(address)", limits.authPerMinute, then: plan, policy: "auth", unasked)
        case .open:
            return count("ip|\(address)", limits.publicPerMinute, then: plan, policy: "ip", unasked)
        case .session(let sessionID):
            return count("ip|\(address)", limits.publicPerMinute) { [self] byAddress in
                guard byAddress.allowed else { return .done(.refuse(Self.limited(byAddress, policy: "ip"))) }
                return count("session|\(sessionID.prefix(128))", limits.sessionPerMinute, then: plan, policy: "session", unasked)
            }
        case .authenticated:
            if let known = request.verified, known.authorization == request.authorization, known.claims.exp.value > Date() {
                return verified(known.claims, .asSent, address: address, plan, tenantKey: known.tenantKey)
            }
            guard let token = JWTAuthMiddleware<GatewayRequestContext>.bearerToken(request.authorization) else {
                if let key = request.apiKey { return admit(apiKey: key, address: address, plan) }
                return refused(.unauthorized(), address: address)
            }
            if APIKeyFormat.isAPIKey(token) { return admit(apiKey: token, address: address, plan) }
            if let claims = verifier.cachedClaims(token) { return verified(claims, .asSent, address: address, plan) }
            return .suspended { [self] in
                do {
                    let claims = try await verifier.verify(token)
                    // A token first seen by a gateway that has not read the revocation feed yet waits
                    // for it: a restart must not let a revoked token through. Later ones are cached.
                    await revocations?.untilCaughtUp()
                    return verified(claims, .asSent, address: address, plan)
                } catch let error as AppError where error.status == .unauthorized {
                    return refused(error, address: address)
                } catch {
                    return .done(.refuse(AppError.from(error)))
                }
            }
        }
    }

    /// A request with a good token (or an API key's): refused if auth has voided the token or its
    /// tenant is suspended, else counted against the tenant's limit.
    private func verified(
        _ claims: AccessTokenClaims, _ authorization: UpstreamAuthorization, address: String, _ plan: Plan, tenantKey: String? = nil
    ) -> Step {
        if revocations?.voids(claims) == true { return refused(Self.revoked, address: address) }
        let policy = tenantPolicies?.policy(for: claims.tenantID)
        if policy?.suspended == true { return .done(.refuse(Self.suspended)) }
        return count(
            tenantKey ?? Self.tenantKey(claims), policy?.rateLimitPerMinute ?? limits.tenantPerMinute, then: plan, policy: "tenant", authorization,
            claims: claims
        )
    }

    /// An API key goes on as its access token, from memory or from auth (off the event loop).
    private func admit(apiKey key: String, address: String, _ plan: Plan) -> Step {
        guard let apiKeys else { return .done(.refuse(Self.apiKeysUnavailable)) }
        guard APIKeyFormat.isWellFormed(key) else { return refused(APIKeyTokens.invalid, address: address) }
        let answered: @Sendable (APIKeyTokens.Answer) -> Step = { [self] answer in
            switch answer {
            case .granted(let grant): verified(grant.claims, .replaced("Bearer \(grant.token)"), address: address, plan)
            case .refused(let error) where error.status == .unauthorized: refused(error, address: address)
            case .refused(let error): .done(.refuse(error))
            }
        }
        let fingerprint = APIKeyTokens.fingerprint(key)
        if let answer = apiKeys.cached(fingerprint) {
            // A token voided since (the key revoked, its maker's role changed): auth is asked again.
            guard case .granted(let grant) = answer, revocations?.voids(grant.claims) == true else { return answered(answer) }
            apiKeys.forget(fingerprint, token: grant.token)
        }
        return .suspended { answered(await apiKeys.answer(for: key, fingerprint: fingerprint)) }
    }

    /// Whether an `Authorization` header carries an API key (`Bearer sk_…`).
    static func isBearerAPIKey(_ authorization: String) -> Bool {
        JWTAuthMiddleware<GatewayRequestContext>.bearerToken(authorization).map(APIKeyFormat.isAPIKey) ?? false
    }

    /// Counts a request against `key`'s limit, now or after the limiter's round trip.
    private func count(_ key: String, _ limit: Int, then: @escaping @Sendable (RateLimitDecision) -> Step) -> Step {
        if let decision = limiter.decision(key: key, limit: limit, now: Date()) { return then(decision) }
        return afterWaiting(key, limit, then: then)
    }

    /// Counts a request against `key`'s limit, then forwards it as `plan` says (or refuses it 429
    /// under `policy`). `count(_:_:then:)` without the closure, unless the limiter must wait.
    private func count(
        _ key: String, _ limit: Int, then plan: Plan, policy: String, _ authorization: UpstreamAuthorization, claims: AccessTokenClaims? = nil
    ) -> Step {
        if let decision = limiter.decision(key: key, limit: limit, now: Date()) {
            return Self.forward(plan, limit: decision, policy: policy, authorization, claims)
        }
        return afterWaiting(key, limit) { Self.forward(plan, limit: $0, policy: policy, authorization, claims) }
    }

    private func afterWaiting(_ key: String, _ limit: Int, then: @escaping @Sendable (RateLimitDecision) -> Step) -> Step {
        .suspended { [limiter] in
            guard let decision = await limiter.decisionAfterWaiting(key: key, limit: limit) else {
                return .done(.refuse(Self.limiterUnavailable))
            }
            return then(decision)
        }
    }

    /// Forwarded as `plan` says if the limit allows, else 429 under `policy`.
    private static func forward(
        _ plan: Plan, limit: RateLimitDecision, policy: String, _ authorization: UpstreamAuthorization, _ claims: AccessTokenClaims?
    ) -> Step {
        guard limit.allowed else { return .done(.refuse(limited(limit, policy: policy))) }
        return .done(.forward(
            Forward(service: plan.service, path: plan.path, access: plan.access, limit: limit, policy: policy, authorization: authorization, claims: claims)
        ))
    }

    /// A refused credential costs an attempt against the client address; past its limit, 429.
    private func refused(_ error: AppError, address: String) -> Step {
        count("ip|\(address)", limits.publicPerMinute) { byAddress in
            .done(.refuse(byAddress.allowed ? error : Self.limited(byAddress, policy: "ip")))
        }
    }

    /// The token is well signed and unexpired, but auth has voided it (logout, and the like).
    static let revoked = AppError.unauthorized("This session has ended; sign in again", code: "TOKEN_REVOKED")

    /// API keys need the gateway's own key (`SERVICE_KEY`) to be exchanged with auth.
    static let apiKeysUnavailable = AppError.unavailable("API keys cannot be checked by this gateway", code: "API_KEYS_UNAVAILABLE")

    /// The token is good but its tenant is suspended.
    static let suspended = AppError(.forbidden, code: "TENANT_SUSPENDED", detail: "This account is suspended")

    /// Shared limits cannot be checked and the gateway is set to fail closed.
    static let limiterUnavailable = AppError(
        .serviceUnavailable, code: "RATE_LIMITER_UNAVAILABLE", detail: "Rate limits cannot be checked right now; try again shortly",
        headers: [.retryAfter: "1"]
    )

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
