import AsyncHTTPClient
import Foundation
import HTTPTypes
import InternalAPI
import Logging
import NIOCore
import ServiceCore

/// Asks auth (`POST /internal/gateway/api-keys/exchange`, as the gateway by its own key) for an
/// access token for an API key. Failures come out as `InternalCallError`, as from other calls
/// between services.
struct APIKeyExchangeClient: Sendable {
    private let client: InternalClient
    private let logger: Logger

    /// - Parameter authURL: auth's base URL.
    init(authURL: String, identity: CallerIdentity, http: HTTPClient, timeout: TimeAmount, logger: Logger) {
        self.client = InternalClient(service: "auth", baseURL: authURL, http: http, identity: identity, timeout: timeout)
        self.logger = logger
    }

    func exchange(_ key: String) async throws -> APIKeyExchangeReply {
        try await client.send(
            .post, "/internal/gateway/api-keys/exchange", body: APIKeyExchangeRequest(key: key), as: APIKeyExchangeReply.self, logger: logger
        )
    }
}
