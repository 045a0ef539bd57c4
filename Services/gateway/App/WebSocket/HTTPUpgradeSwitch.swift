import NIOCore
import NIOHTTP1

/// Turns a client connection and an upstream connection served by HTTP/1 handlers (NIO's decoders,
/// the gateway's encoders) into one raw byte tunnel once a 101 has passed, without losing
/// bytes the HTTP decoders already hold (a frame that came in the same segment as the upgrade
/// request or the 101).
///
/// Those bytes survive only if each decoder was made with `leftOverBytesStrategy: .forwardBytes`
/// (as `GatewayChannel` and `UpstreamPool` make them). With the default `.dropBytes` they are
/// silently discarded.
enum HTTPUpgradeSwitch {
    /// Strips both channels and glues them with `TunnelHandler`s. Call on their (shared) event loop,
    /// after the client's 101 head has been written and the upstream's 101 has ended (its `.end`,
    /// not its `.head`: the response decoder fires `.end` right after `.head`, and it must not
    /// reach a handler that takes bytes). `clientHandlers` and `upstreamHandlers` are the caller's
    /// own handlers to remove (the proxy handler, the upstream connection handler), which would
    /// otherwise be handed bytes. The future succeeds once both channels are raw bytes; if the
    /// switch fails half-way, both channels are closed.
    static func tunnel(
        client: any Channel, removing clientHandlers: [any RemovableChannelHandler],
        upstream: any Channel, removing upstreamHandlers: [any RemovableChannelHandler]
    ) throws -> EventLoopFuture<Void> {
        precondition(client.eventLoop === upstream.eventLoop, "a tunnel's two channels must share an event loop")
        client.eventLoop.preconditionInEventLoop()
        // The tunnel first, so that whatever the handlers removed below hand on (the decoders'
        // leftover bytes) reaches it.
        try TunnelHandler.glueSynchronously(client, upstream)
        let requestDecoder = try removeServerHandlers(from: client, alsoRemoving: clientHandlers)
        let responseDecoder = try removeClientHandlers(from: upstream, alsoRemoving: upstreamHandlers)
        // A removed handler may have held back the channel's last `read` (the proxy pausing the
        // client while it waited for the upstream); without a new one neither side reads again.
        client.read()
        upstream.read()
        // The decoders leave last, each on a later tick (a `ByteToMessageHandler` always defers its
        // removal), handing what they hold to the tunnel. The upstream's goes first: the response
        // decoder also watches outbound request heads (`WriteObservingByteToMessageDecoder`), so a
        // byte written to the upstream while it is still there is a crash. Until the client's
        // decoder leaves, it keeps what the client sends (it stopped parsing at the upgrade).
        // A decoder hands over its leftovers as a read with no read-complete after it, so the
        // tunnel does not flush them: flush the receiving side here.
        return upstream.pipeline.syncOperations.removeHandler(responseDecoder)
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
    /// `extra` from `channel`, on its event loop, and returns the request decoder: remove that
    /// last, once what follows it takes `ByteBuffer`s, and it forwards what it holds (with
    /// `.forwardBytes`).
    static func removeServerHandlers(from channel: any Channel, alsoRemoving extra: [any RemovableChannelHandler] = []) throws
        -> ByteToMessageHandler<HTTPRequestDecoder>
    {
        let pipeline = channel.pipeline.syncOperations
        for handler in extra { pipeline.removeHandler(handler, promise: nil) }
        removeIfPresent(GatewayResponseEncoder.self, from: pipeline)
        return try pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
    }

    /// Removes the HTTP/1 request encoder `UpstreamPool` adds (`UpstreamRequestEncoder`), any
    /// `IdleStateHandler` (its timeout was for HTTP answers; a WebSocket may rightly stay silent)
    /// and `extra` from `channel`, and returns the response decoder, to be removed last (see
    /// `removeServerHandlers`).
    static func removeClientHandlers(from channel: any Channel, alsoRemoving extra: [any RemovableChannelHandler] = []) throws
        -> ByteToMessageHandler<HTTPResponseDecoder>
    {
        let pipeline = channel.pipeline.syncOperations
        for handler in extra { pipeline.removeHandler(handler, promise: nil) }
        removeIfPresent(IdleStateHandler.self, from: pipeline)
        removeIfPresent(UpstreamRequestEncoder.self, from: pipeline)
        return try pipeline.handler(type: ByteToMessageHandler<HTTPResponseDecoder>.self)
    }

    private static func removeIfPresent<Handler: RemovableChannelHandler>(
        _ type: Handler.Type, from pipeline: ChannelPipeline.SynchronousOperations
    ) {
        guard let handler = try? pipeline.handler(type: type) else { return }
        pipeline.removeHandler(handler, promise: nil)
    }
}
