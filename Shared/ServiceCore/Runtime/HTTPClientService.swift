import AsyncHTTPClient
import ServiceLifecycle

/// Ties an `HTTPClient` to the service group: it is shut down after the server stops.
package struct HTTPClientService: Service {
    package let client: HTTPClient

    package init(client: HTTPClient) {
        self.client = client
    }

    package func run() async throws {
        try? await gracefulShutdown()
        try await client.shutdown()
    }
}
