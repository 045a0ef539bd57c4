import Hummingbird
import NIOCore
import ServiceCore

/// The gateway's request context: the peer address as well as the verified caller.
package struct GatewayRequestContext: ServiceRequestContext {
    package var coreContext: CoreRequestContextStorage
    package var identity: AccessTokenClaims?
    package var maxUploadSize: Int
    package let remoteAddress: String?

    package init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.identity = nil
        self.maxUploadSize = 1_048_576
        self.remoteAddress = source.channel.remoteAddress?.ipAddress
    }
}
