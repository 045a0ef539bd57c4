import Hummingbird
import Logging
import NIOCore

/// What the shared middlewares need from a service's request context.
package protocol ServiceRequestContext: RequestContext {
    /// The verified caller, set by `JWTAuthMiddleware`.
    var identity: AccessTokenClaims? { get set }
    /// Body limit applied when decoding, set by `BodyLimitMiddleware` from configuration.
    var maxUploadSize: Int { get set }
}

/// The request context of the database-backed services.
package struct AppRequestContext: ServiceRequestContext {
    package var coreContext: CoreRequestContextStorage
    package var identity: AccessTokenClaims?
    package var maxUploadSize: Int

    package init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.identity = nil
        self.maxUploadSize = 1_048_576
    }

    /// The verified caller, or 401 when the route was reached without one.
    package func requireIdentity() throws -> AccessTokenClaims {
        guard let identity else { throw AppError.unauthorized() }
        return identity
    }
}
