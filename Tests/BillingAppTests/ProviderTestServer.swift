import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceCore
import Synchronization
import TestSupport

/// A local HTTP server in the test process standing in for a payment provider's API: it records
/// every request exactly as it arrived (method, path, query, headers, raw body) and answers what
/// the test scripts, in the provider's documented wire format.
final class ProviderTestServer: Sendable {
    struct Received: Sendable {
        var method: String
        var path: String
        var query: String?
        var headers: HTTPFields
        var body: String

        func header(_ name: String) -> String? { HTTPField.Name(name).flatMap { headers[$0] } }

        /// The body as a JSON object.
        func json() throws -> [String: Any] {
            guard let object = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] else {
                throw FixtureError(description: "body is not a JSON object: \(body)")
            }
            return object
        }

        /// The body as `application/x-www-form-urlencoded` fields, decoded, in order.
        func form() -> [(String, String)] {
            body.split(separator: "&").map { pair in
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map {
                    String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String($0)
                }
                return (parts[0], parts.count > 1 ? parts[1] : "")
            }
        }

        func formValue(_ key: String) -> String? { form().first { $0.0 == key }?.1 }
    }

    struct Reply: Sendable {
        var status: Int
        var body: String
        /// How long the server waits before answering (a provider slower than the client's deadline).
        var delay: Duration? = nil

        static func json(_ status: Int, _ body: String) -> Reply { Reply(status: status, body: body) }

        /// Answers only after `delay`.
        static func late(_ delay: Duration, _ status: Int, _ body: String) -> Reply { Reply(status: status, body: body, delay: delay) }
    }

    typealias Script = @Sendable (Received) -> Reply

    let port: Int
    private let requests = Mutex<[Received]>([])

    var url: String { "http://127.0.0.1:\(port)" }
    var received: [Received] { requests.withLock { $0 } }

    private init(port: Int) {
        self.port = port
    }

    /// Runs `body` with a server answering by `script`, and an HTTP client for the provider client under test.
    @discardableResult
    static func with<T: Sendable>(
        _ script: @escaping Script, _ body: @Sendable (ProviderTestServer, HTTPClient) async throws -> T
    ) async throws -> T {
        let server = ProviderTestServer(port: try TestPorts.next())
        let (started, signal) = AsyncStream<Void>.makeStream()
        let responder = CallbackResponder<BasicRequestContext>(callback: { request, _ in
            let bytes = try await request.body.collect(upTo: 1 << 20)
            let received = Received(
                method: request.method.rawValue, path: request.uri.path, query: request.uri.query, headers: request.headers,
                body: String(buffer: bytes)
            )
            server.requests.withLock { $0.append(received) }
            let reply = script(received)
            if let delay = reply.delay { try? await Task.sleep(for: delay) }
            return Response(
                status: HTTPResponse.Status(code: reply.status), headers: [.contentType: "application/json"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: reply.body))
            )
        })
        let app = Application(
            responder: responder, configuration: .init(address: .hostname("127.0.0.1", port: server.port)),
            onServerRunning: { _ in signal.yield() }, logger: .init(label: "provider-test-server")
        )
        let runner = ServiceRunner([app])
        let http = HTTPClient.makeInternal()
        do {
            for await _ in started { break }
            let result = try await body(server, http)
            try await http.shutdown()
            await runner.stop()
            return result
        } catch {
            try? await http.shutdown()
            await runner.stop()
            throw error
        }
    }
}
