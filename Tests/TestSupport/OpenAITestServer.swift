import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A local server that speaks OpenAI's chat-completions streaming wire format
/// (`POST /v1/chat/completions`, `Authorization: Bearer`, a `text/event-stream` answer of
/// `data: {"choices":[{"delta":{"content":…}}]}` lines ending with `data: [DONE]`, and OpenAI's
/// `{"error":{…}}` bodies for failures), for testing chat's OpenAI responder against real HTTP.
package final class OpenAITestServer: Sendable {
    /// What the server does with the next requests.
    package enum Behaviour: Sendable {
        /// Streams `pieces` as content deltas, `gap` apart, then `data: [DONE]`.
        case stream([String], gap: Duration)
        /// Sends the head and `pieces`, then nothing more (the connection stays open).
        case stallAfter([String])
        /// Answers `status` with OpenAI's error body carrying `message` and `type`.
        case fail(status: Int, message: String, type: String)
    }

    /// One request as it arrived.
    package struct Received: Sendable {
        package var method: String
        package var path: String
        package var authorization: String?
        package var body: Data
    }

    private struct State {
        var behaviour: Behaviour
        var received: [Received] = []
        var piecesWritten = 0
        var clientLeft = 0
    }

    package let port: Int
    private let shared: SharedState
    private let task: Task<Void, any Error>

    private init(port: Int, shared: SharedState, task: Task<Void, any Error>) {
        self.port = port
        self.shared = shared
        self.task = task
    }

    /// `OPENAI_BASE_URL` for this server.
    package var baseURL: String { "http://127.0.0.1:\(port)/v1" }

    package var received: [Received] { shared.state.withLock { $0.received } }
    /// Content deltas written to clients so far.
    package var piecesWritten: Int { shared.state.withLock { $0.piecesWritten } }
    /// Streams cut short because the client went away.
    package var clientLeft: Int { shared.state.withLock { $0.clientLeft } }

    package func behave(_ behaviour: Behaviour) {
        shared.state.withLock { $0.behaviour = behaviour }
    }

    package static func start(_ behaviour: Behaviour) async throws -> OpenAITestServer {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(wrappingChannelSynchronously: channel)
                }
            }
        let port = server.channel.localAddress?.port ?? 0
        let shared = SharedState(behaviour: behaviour)
        let task = Task {
            try await server.executeThenClose { inbound in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await connection in inbound {
                        group.addTask { try? await shared.serve(connection) }
                    }
                }
            }
        }
        return OpenAITestServer(port: port, shared: shared, task: task)
    }

    package func stop() async {
        task.cancel()
        _ = try? await task.value
    }

    /// The connection handling, apart from the server object so each connection's task holds only this.
    private final class SharedState: Sendable {
        let state: Mutex<State>

        init(behaviour: Behaviour) { self.state = Mutex(State(behaviour: behaviour)) }

        func serve(_ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>) async throws {
            try await connection.executeThenClose { inbound, outbound in
                var head: HTTPRequestHead?
                var body = ByteBuffer()
                for try await part in inbound {
                    switch part {
                    case .head(let requestHead):
                        head = requestHead
                        body.clear()
                    case .body(var bytes):
                        body.writeBuffer(&bytes)
                    case .end:
                        guard let head else { return }
                        let behaviour = state.withLock { state in
                            state.received.append(
                                Received(method: "\(head.method)", path: head.uri, authorization: head.headers.first(name: "Authorization"), body: Data(body.readableBytesView))
                            )
                            return state.behaviour
                        }
                        guard head.method == .POST, head.uri == "/v1/chat/completions" else {
                            try await Self.fail(outbound, status: 404, message: "Unknown request URL: \(head.method) \(head.uri)", type: "invalid_request_error")
                            continue
                        }
                        switch behaviour {
                        case .fail(let status, let message, let type):
                            try await Self.fail(outbound, status: status, message: message, type: type)
                        case .stream(let pieces, let gap):
                            try await stream(outbound, pieces: pieces, gap: gap, thenStall: false)
                        case .stallAfter(let pieces):
                            try await stream(outbound, pieces: pieces, gap: .zero, thenStall: true)
                        }
                    }
                }
            }
        }

        private func stream(
            _ outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>, pieces: [String], gap: Duration, thenStall: Bool
        ) async throws {
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "text/event-stream")
            headers.add(name: "Transfer-Encoding", value: "chunked")
            try await outbound.write(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers)))
            do {
                for (index, piece) in pieces.enumerated() {
                    if index > 0, gap > .zero { try await Task.sleep(for: gap) }
                    let chunk: [String: Any] = [
                        "id": "chatcmpl-test", "object": "chat.completion.chunk", "model": "test-model",
                        "choices": [["index": 0, "delta": ["content": piece], "finish_reason": NSNull()]],
                    ]
                    let json = try JSONSerialization.data(withJSONObject: chunk)
                    // Each event as OpenAI frames it: one `data:` line and a blank line.
                    try await outbound.write(.body(.byteBuffer(ByteBuffer(string: "data: " + String(decoding: json, as: UTF8.self) + "\n\n"))))
                    state.withLock { $0.piecesWritten += 1 }
                }
            } catch {
                state.withLock { $0.clientLeft += 1 }
                throw error
            }
            if thenStall {
                try await Task.sleep(for: .seconds(600))
                return
            }
            try await outbound.write(.body(.byteBuffer(ByteBuffer(string: "data: [DONE]\n\n"))))
            try await outbound.write(.end(nil))
        }

        private static func fail(_ outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>, status: Int, message: String, type: String) async throws {
            let body = try JSONSerialization.data(withJSONObject: ["error": ["message": message, "type": type, "param": NSNull(), "code": NSNull()]])
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "application/json")
            headers.add(name: "Content-Length", value: String(body.count))
            try await outbound.write(.head(HTTPResponseHead(version: .http1_1, status: HTTPResponseStatus(statusCode: status), headers: headers)))
            try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: body))))
            try await outbound.write(.end(nil))
        }
    }
}
