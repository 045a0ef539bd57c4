import NIOCore

/// One end of a byte tunnel between two channels of the same event loop (a WebSocket after its
/// 101): what one channel reads, the other writes. Modelled on the `GlueHandler` of NIO's
/// connect-proxy example: a channel reads only while its partner can take more (backpressure both
/// ways), a half-close is passed on, and when one side closes or fails the other is closed too.
final class TunnelHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var partner: TunnelHandler?
    private var context: ChannelHandlerContext?
    /// A `read` held back because the partner could not take more; issued when it can.
    private var pendingRead = false

    private init() {}

    /// Glues `a` and `b` (appending a handler to each pipeline) and starts both reading. Call on
    /// their event loop; both must be on the same one, as a partner is touched directly. If either
    /// has closed already, both are closed and this throws.
    static func glueSynchronously(_ a: any Channel, _ b: any Channel) throws {
        precondition(a.eventLoop === b.eventLoop, "a tunnel's two channels must share an event loop")
        a.eventLoop.preconditionInEventLoop()
        let first = TunnelHandler()
        let second = TunnelHandler()
        first.partner = second
        second.partner = first
        try a.pipeline.syncOperations.addHandler(first)
        try b.pipeline.syncOperations.addHandler(second)
        // A side that closed before its handler was added never tells it: close the other now.
        guard a.isActive, b.isActive else {
            a.close(promise: nil)
            b.close(promise: nil)
            throw TunnelError.channelClosed
        }
        // A handler removed from in front of us (an HTTP handler, the proxy) may have held back the
        // channel's last `read`; without a new one an auto-read channel would never read again.
        first.start()
        second.start()
    }

    /// `glueSynchronously` from any thread; fails if the channels are on different event loops.
    static func glue(_ a: any Channel, _ b: any Channel) -> EventLoopFuture<Void> {
        guard a.eventLoop === b.eventLoop else { return a.eventLoop.makeFailedFuture(TunnelError.differentEventLoops) }
        return a.eventLoop.submit { try glueSynchronously(a, b) }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
    }

    // MARK: - This channel's events, passed to the partner

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        partner?.write(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.context?.flush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner?.context?.close(promise: nil)
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case ChannelEvent.inputClosed:
            // Our peer sent FIN: pass it on as a FIN to the partner's peer. NIO escalates to a full
            // close once a channel has shut both directions.
            partner?.closeOutput()
        case is ChannelShouldQuiesceEvent:
            // Server shutdown: a tunnel has no request boundary to finish at, and an open one would
            // hold graceful shutdown forever.
            partner?.context?.close(promise: nil)
            context.close(promise: nil)
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        partner?.context?.close(promise: nil)
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { partner?.partnerBecameWritable() }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if partner?.isWritable == true {
            context.read()
        } else {
            pendingRead = true
        }
    }

    // MARK: - Called by the partner

    private var isWritable: Bool { context?.channel.isWritable ?? false }

    private func write(_ buffer: ByteBuffer) {
        context?.write(wrapOutboundOut(buffer), promise: nil)
    }

    private func closeOutput() {
        guard let context else { return }
        // A channel that cannot half-close is closed whole instead.
        context.close(mode: .output).assumeIsolated().whenFailure { _ in context.close(promise: nil) }
    }

    /// The partner can take more: issue the read held back, if any.
    private func partnerBecameWritable() {
        guard pendingRead, let context else { return }
        pendingRead = false
        context.read()
    }

    private func start() {
        guard let context else { return }
        if partner?.isWritable == true { context.read() } else { pendingRead = true }
    }
}

/// Why two channels could not be glued.
enum TunnelError: Error {
    case differentEventLoops
    case channelClosed
}
