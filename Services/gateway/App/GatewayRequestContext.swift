import Hummingbird
import ServiceCore

/// The request context of the gateway's admin routes.
package struct GatewayRequestContext: ServiceRequestContext {
    package var coreContext: CoreRequestContextStorage
    package var identity: AccessTokenClaims?
    package var maxUploadSize: Int

    package init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.identity = nil
        self.maxUploadSize = 1_048_576
    }
}
