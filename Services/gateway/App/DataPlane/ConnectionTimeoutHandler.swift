import NIOCore

/// Closes client connections that hold a slot without sending a request: idle kept-alive ones
/// after `idleTimeout`, and slow-loris ones whose request head, once begun, is not complete
/// within `headerTimeout`. Sits in front of the HTTP decoder so it sees bytes, not requests.
///
/// One coarse tick per connection (at most one a second, none while a request is being served)
/// instead of a timer per request, so keeping these deadlines costs nothing on the hot path.
final class ConnectionTimeoutHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private enum Phase {
        case waitingForRequest(since: NIODeadline)
        case readingHead(since: NIODeadline)
        case serving
    }

    private let headerTimeout: TimeAmount
    private let idleTimeout: TimeAmount
    private var phase = Phase.waitingForRequest(since: .now())
    private var tick: Scheduled<Void>?
    private var context: ChannelHandlerContext?

    init(headerTimeout: TimeAmount, idleTimeout: TimeAmount) {
        self.headerTimeout = headerTimeout
        self.idleTimeout = idleTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { waitForNextRequest() }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        tick?.cancel()
        tick = nil
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        waitForNextRequest()
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        tick?.cancel()
        tick = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .waitingForRequest = phase { phase = .readingHead(since: .now()) }
        context.fireChannelRead(data)
    }

    /// A whole request head arrived: the request is the proxy's to time now.
    func requestStarted() {
        phase = .serving
    }

    /// The answer ended and the connection stays open for another request.
    func waitForNextRequest() {
        phase = .waitingForRequest(since: .now())
        scheduleTick()
    }

    private var deadline: NIODeadline? {
        switch phase {
        case .waitingForRequest(let since): since + idleTimeout
        case .readingHead(let since): since + headerTimeout
        case .serving: nil
        }
    }

    private func scheduleTick() {
        guard tick == nil, let context, let deadline else { return }
        let next = min(deadline, .now() + .seconds(1))
        tick = context.eventLoop.assumeIsolated().scheduleTask(deadline: next) { [self] in
            tick = nil
            guard let deadline = self.deadline else { return }
            if deadline <= .now() {
                self.context?.close(promise: nil)
            } else {
                scheduleTick()
            }
        }
    }
}
