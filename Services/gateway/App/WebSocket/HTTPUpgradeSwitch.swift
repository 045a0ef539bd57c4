import NIOCore
import NIOHTTP1

/// Turns a client connection and an upstream connection served by the gateway's HTTP/1 handlers
/// (`ProxyHandler`, `UpstreamConnection`) into one raw byte tunnel once a 101 has passed, without
/// losing bytes the HTTP side already holds (a frame that came in the same segment as the upgrade
/// request or the 101): `ProxyHandler` keeps what follows an upgrade request, `UpstreamConnection`
/// what follows a 101, and each hands it on as it leaves.
enum HTTPUpgradeSwitch {
    /// Strips both channels and glues them with `TunnelHandler`s. Call on their (shared) event loop,
    /// after the client's 101 head has been written and the upstream's 101 has ended.
    /// `requestReader` is the client channel's HTTP handler (the proxy handler), `answerReader` the
    /// upstream channel's. The future succeeds once both channels are raw bytes; if the switch
    /// fails half-way, both channels are closed.
    static func tunnel(
        client: any Channel, requestReader: any RemovableChannelHandler, upstream: any Channel, answerReader: UpstreamConnection
    ) throws -> EventLoopFuture<Void> {
        precondition(client.eventLoop === upstream.eventLoop, "a tunnel's two channels must share an event loop")
        client.eventLoop.preconditionInEventLoop()
        // The tunnel first, so that whatever the handlers removed below hand on reaches it.
        try TunnelHandler.glueSynchronously(client, upstream)
        removeClientHandlers(from: upstream)
        // A removed handler may have held back the channel's last `read` (the proxy pausing the
        // client while it waited for the upstream); without a new one neither side reads again.
        client.read()
        upstream.read()
        // The upstream's answer reader leaves first, handing the tunnel what followed the 101, then
        // the request reader, with what the client sent behind its upgrade request. Leftovers come
        // as a read with no read-complete after it, so the tunnel does not flush them: flush the
        // receiving side here.
        return upstream.pipeline.syncOperations.removeHandler(answerReader)
            .assumeIsolated()
            .flatMap {
                client.flush()
                return client.pipeline.syncOperations.removeHandler(requestReader)
            }
            .map { upstream.flush() }
            .flatMapErrorThrowing { error in
                client.close(promise: nil)
                upstream.close(promise: nil)
                throw error
            }
            .nonisolated()
    }

    /// Removes any `IdleStateHandler` `UpstreamPool` adds (its timeout was for HTTP answers; a
    /// WebSocket may rightly stay silent) from `channel`.
    static func removeClientHandlers(from channel: any Channel) {
        removeIfPresent(IdleStateHandler.self, from: channel.pipeline.syncOperations)
    }

    private static func removeIfPresent<Handler: RemovableChannelHandler>(
        _ type: Handler.Type, from pipeline: ChannelPipeline.SynchronousOperations
    ) {
        guard let handler = try? pipeline.handler(type: type) else { return }
        pipeline.removeHandler(handler, promise: nil)
    }
}

/// Bytes that came behind a protocol switch (a WebSocket frame in the same segment as the upgrade
/// request or the 101), kept by the HTTP handler that read them until it leaves the pipeline.
struct BytesAfterSwitch {
    private var bytes: ByteBuffer?

    /// Keeps the rest of `input`, consuming it.
    mutating func append(_ input: inout ByteBuffer) {
        guard input.readableBytes > 0 else { return }
        if bytes == nil { bytes = input } else { bytes!.writeBuffer(&input) }
        input.moveReaderIndex(to: input.writerIndex)
    }

    /// Hands what was kept to the handlers after `context`'s (the tunnel), as the handler leaves.
    mutating func handOn(_ context: ChannelHandlerContext) {
        guard let kept = bytes else { return }
        bytes = nil
        context.fireChannelRead(NIOAny(kept))
    }
}
