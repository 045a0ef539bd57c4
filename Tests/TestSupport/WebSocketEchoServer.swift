import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import Synchronization

/// A real WebSocket server on 127.0.0.1 (NIOWebSocket's upgrader in NIO's HTTP server pipeline), an
/// upstream for proxy tests: echoes text and binary frames, answers pings, honours a Close. Keeps
/// the upgrade requests it accepted, so a test can check what a proxy forwarded.
package final class WebSocketEchoServer: Sendable {
    package let port: Int
    private let channel: any Channel
    private let counters: Counters

    private init(channel: any Channel, counters: Counters) {
        self.channel = channel
        self.port = channel.localAddress?.port ?? 0
        self.counters = counters
    }

    /// Starts listening on an ephemeral port of 127.0.0.1.
    package static func start(group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> WebSocketEchoServer {
        let counters = Counters()
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                let upgrader = NIOWebSocketServerUpgrader(
                    maxFrameSize: 1 << 20,
                    shouldUpgrade: { channel, head in
                        counters.accepted(head, on: channel)
                        return channel.eventLoop.makeSucceededFuture(HTTPHeaders())
                    },
                    upgradePipelineHandler: { channel, _ in
                        channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(EchoHandler()) }
                    }
                )
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                        withServerUpgrade: (upgraders: [upgrader], completionHandler: { _ in })
                    )
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        return WebSocketEchoServer(channel: channel, counters: counters)
    }

    /// The upgrade requests accepted so far, in order.
    package var upgradeRequests: [HTTPRequestHead] { counters.state.withLock { $0.requests } }

    /// WebSocket connections (upgrade requests accepted) not yet closed. Plain HTTP connections,
    /// such as a proxy's health probes, are not counted here or below.
    package var openConnections: Int { counters.state.withLock { $0.open } }

    /// WebSocket connections (upgrade requests accepted) since closed.
    package var closedConnections: Int { counters.state.withLock { $0.closed } }

    package func stop() async throws {
        try await channel.close()
    }
}

/// The echo server's bookkeeping, shared with its connections' event loops.
private final class Counters: Sendable {
    let state = Mutex<(requests: [HTTPRequestHead], open: Int, closed: Int)>(([], 0, 0))

    func accepted(_ head: HTTPRequestHead, on channel: any Channel) {
        state.withLock {
            $0.requests.append(head)
            $0.open += 1
        }
        channel.closeFuture.whenComplete { _ in
            self.state.withLock {
                $0.open -= 1
                $0.closed += 1
            }
        }
    }
}

/// Echoes data frames, answers pings, and answers a Close with a Close (same code) before closing.
private final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text, .binary, .continuation:
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: frame.fin, opcode: frame.opcode, data: frame.unmaskedData)), promise: nil)
        case .ping:
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)), promise: nil)
        case .connectionClose:
            var payload = frame.unmaskedData
            let code = payload.readInteger(as: UInt16.self) ?? 1000
            var reply = context.channel.allocator.buffer(capacity: 2)
            reply.writeInteger(code)
            context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: reply)))
                .assumeIsolated()
                .whenComplete { _ in context.close(promise: nil) }
        default:
            break
        }
    }
}
