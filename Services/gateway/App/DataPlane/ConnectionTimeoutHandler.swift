import NIOCore

/// Closes client connections that hold a slot without sending a request: idle kept-alive ones
/// after `idleTimeout`, and slow-loris ones whose request head, once begun, is not complete
/// within `headerTimeout`. Sits in front of the request reader so it sees bytes, not requests.
///
/// Also keeps the one deadline of a request being served: the time its upstream has to start
/// answering (`awaitAnswer(by:)`), told back through `onAnswerOverdue`.
///
/// One coarse tick per connection (at most one a second, none while a request is served without
/// a deadline) instead of a timer per request, so keeping these deadlines costs nothing on the hot
/// path: a kept-alive connection's next request finds the tick still pending.
final class ConnectionTimeoutHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private enum Phase {
        case waitingForRequest(since: NIODeadline)
        case readingHead(since: NIODeadline)
        /// A request is being served; its upstream must start answering by `answerBy`, if set.
        case serving(answerBy: NIODeadline?)
    }

    private let headerTimeout: TimeAmount
    private let idleTimeout: TimeAmount
    private var phase = Phase.waitingForRequest(since: .now())
    private var tick: Scheduled<Void>?
    /// When the pending tick fires.
    private var tickAt: NIODeadline?
    /// Runs (on the event loop) when the upstream has not started answering by the deadline.
    var onAnswerOverdue: (() -> Void)?
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
        cancelTick()
        onAnswerOverdue = nil
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        waitForNextRequest()
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancelTick()
        onAnswerOverdue = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .waitingForRequest = phase { phase = .readingHead(since: .now()) }
        context.fireChannelRead(data)
    }

    /// A whole request head arrived: the request is the proxy's to time now.
    func requestStarted() {
        phase = .serving(answerBy: nil)
    }

    /// The request went upstream, which has until `deadline` to start answering.
    func awaitAnswer(by deadline: NIODeadline) {
        phase = .serving(answerBy: deadline)
        // Usually a tick is pending and comes first (deadlines are seconds away); it re-arms.
        if let tickAt, tickAt <= deadline { return }
        cancelTick()
        scheduleTick()
    }

    /// The upstream started answering (or failed): no deadline until the next request.
    func answerArrived() {
        if case .serving = phase { phase = .serving(answerBy: nil) }
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
        case .serving(let answerBy): answerBy
        }
    }

    private func cancelTick() {
        tick?.cancel()
        tick = nil
        tickAt = nil
    }

    private func scheduleTick() {
        guard tick == nil, let context, let deadline else { return }
        let next = min(deadline, .now() + .seconds(1))
        tickAt = next
        tick = context.eventLoop.assumeIsolated().scheduleTask(deadline: next) { [self] in
            tick = nil
            tickAt = nil
            guard let deadline = self.deadline else { return }
            if deadline > .now() {
                scheduleTick()
            } else if case .serving = phase {
                phase = .serving(answerBy: nil)
                onAnswerOverdue?()
            } else {
                self.context?.close(promise: nil)
            }
        }
    }
}
