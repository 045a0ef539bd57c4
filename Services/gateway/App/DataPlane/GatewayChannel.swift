import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// The public port's connections: the gateway's own HTTP/1 reader, encoder and handlers, no async
/// request machinery. Hummingbird's `Server` still accepts the connections and,
/// at shutdown, stops accepting and lets in-flight answers finish (NIO's quiescing, which
/// `ProxyHandler` honours by closing each connection after its current answer).
struct GatewayChannel: ServerChildChannel {
    struct Value: ServerChildChannelValue {
        let channel: any Channel
    }

    let plane: DataPlane
    /// Largest request head (all header lines together, and any one of them); 431 beyond.
    let maxHeaderBytes: Int

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            let timeouts = ConnectionTimeoutHandler(headerTimeout: plane.limits.headerTimeout, idleTimeout: plane.limits.idleTimeout)
            let operations = channel.pipeline.syncOperations
            try operations.addHandler(timeouts)
            // No HTTP codec and no pipelining handler: `ProxyHandler` reads requests from the bytes
            // and writes answers as bytes itself (one write per head), and queues pipelined requests
            // (NIO's pipelining handler holds back reads after every request, two epoll_ctl calls
            // each). It hands on what came behind an upgrade request (a WebSocket frame) when a
            // tunnel replaces it.
            let peer = channel.remoteAddress?.ipAddress ?? "unknown"
            try operations.addHandler(
                ProxyHandler(
                    plane: plane, pool: plane.pools.pool(for: channel.eventLoop), timeouts: timeouts, peer: peer,
                    maxHeaderBytes: maxHeaderBytes
                )
            )
            return Value(channel: channel)
        }
    }

    func handle(value: Value, logger: Logger) async {
        try? await value.channel.closeFuture.get()
    }
}

/// The public data plane as a service: serves until graceful shutdown, then closes the idle
/// upstream connections it kept.
struct DataPlaneServer: Service {
    let plane: DataPlane
    let server: any Service

    init(plane: DataPlane, host: String, port: Int, maxHeaderBytes: Int, onServerRunning: @escaping @Sendable (any Channel) async -> Void) {
        self.plane = plane
        self.server = GatewayChannel(plane: plane, maxHeaderBytes: maxHeaderBytes).server(
            configuration: .init(address: .hostname(host, port: port), serverName: "gateway"),
            onServerRunning: onServerRunning,
            eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
            logger: plane.logger
        )
    }

    func run() async throws {
        do {
            try await server.run()
        } catch {
            await plane.pools.closeAll()
            throw error
        }
        await plane.pools.closeAll()
    }
}
