import NIOCore
import NIOHTTP1

/// Turns a client connection and an upstream connection served by the gateway's HTTP/1 handlers
/// (`RequestReader`, the encoders, `UpstreamConnection`) into one raw byte tunnel once a 101 has
/// passed, without losing bytes the HTTP side already holds (a frame that came in the same segment
/// as the upgrade request or the 101): `RequestReader` keeps what follows an upgrade request,
/// `UpstreamConnection` what follows a 101, and each hands it on as it leaves.
enum HTTPUpgradeSwitch {
    /// Strips both channels and glues them with `TunnelHandler`s. Call on their (shared) event loop,
    /// after the client's 101 head has been written and the upstream's 101 has ended.
    /// `clientHandlers` are the caller's own handlers on the client channel (the proxy handler),
    /// which would otherwise be handed bytes; `answerReader` is the upstream channel's connection
    /// handler. The future succeeds once both channels are raw bytes; if the switch fails half-way,
    /// both channels are closed.
    static func tunnel(
        client: any Channel, removing clientHandlers: [any RemovableChannelHandler], upstream: any Channel, answerReader: UpstreamConnection
    ) throws -> EventLoopFuture<Void> {
        precondition(client.eventLoop === upstream.eventLoop, "a tunnel's two channels must share an event loop")
        client.eventLoop.preconditionInEventLoop()
        // The tunnel first, so that whatever the handlers removed below hand on reaches it.
        try TunnelHandler.glueSynchronously(client, upstream)
        let requestDecoder = try removeServerHandlers(from: client, alsoRemoving: clientHandlers)
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
                return client.pipeline.syncOperations.removeHandler(requestDecoder)
            }
            .map { upstream.flush() }
            .flatMapErrorThrowing { error in
                client.close(promise: nil)
                upstream.close(promise: nil)
                throw error
            }
            .nonisolated()
    }

    /// Removes the HTTP/1 answer encoder `GatewayChannel` adds (`GatewayResponseEncoder`) and
    /// `extra` from `channel`, on its event loop, and returns the request reader: remove that
    /// last, once what follows it takes `ByteBuffer`s, and it hands on what it holds.
    static func removeServerHandlers(from channel: any Channel, alsoRemoving extra: [any RemovableChannelHandler] = []) throws
        -> RequestReader
    {
        let pipeline = channel.pipeline.syncOperations
        for handler in extra { pipeline.removeHandler(handler, promise: nil) }
        removeIfPresent(GatewayResponseEncoder.self, from: pipeline)
        return try pipeline.handler(type: RequestReader.self)
    }

    /// Removes the HTTP/1 request encoder `UpstreamPool` adds (`UpstreamRequestEncoder`) and any
    /// `IdleStateHandler` (its timeout was for HTTP answers; a WebSocket may rightly stay silent)
    /// from `channel`.
    static func removeClientHandlers(from channel: any Channel) {
        let pipeline = channel.pipeline.syncOperations
        removeIfPresent(IdleStateHandler.self, from: pipeline)
        removeIfPresent(UpstreamRequestEncoder.self, from: pipeline)
    }

    private static func removeIfPresent<Handler: RemovableChannelHandler>(
        _ type: Handler.Type, from pipeline: ChannelPipeline.SynchronousOperations
    ) {
        guard let handler = try? pipeline.handler(type: type) else { return }
        pipeline.removeHandler(handler, promise: nil)
    }
}
