import NIOCore
import NIOHTTP1
import ServiceCore

/// Told by an upstream connection what its upstream sends; the downstream connection it serves.
protocol UpstreamDelegate: AnyObject {
    func upstreamAnswer(_ event: UpstreamAnswerParser.Event)
    func upstreamReadComplete()
    func upstreamWritabilityChanged(isWritable: Bool)
    /// The connection closed or failed before the answer ended.
    func upstreamFailed(_ connection: UpstreamConnection, reason: String)
}

/// One kept-alive HTTP/1.1 connection to an upstream, living on the event loop of the downstream
/// connections it serves, one request at a time. Reads from the upstream only while the
/// downstream client keeps up (`pauseReads`), so a slow client never makes the gateway buffer a
/// stream. Reads the answers from the connection's bytes itself (`UpstreamAnswerParser`), with
/// no decoder in front of it.
final class UpstreamConnection: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    /// After a 101: the bytes that came behind it, handed on to the tunnel that replaces HTTP.
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    let service: PublicService
    private(set) var channel: (any Channel)?
    private var context: ChannelHandlerContext?
    var delegate: (any UpstreamDelegate)?
    /// False once the upstream said `Connection: close`, failed, or closed.
    private(set) var isReusable = true
    private var readsPaused = false
    private var parser = UpstreamAnswerParser()
    /// Some of the answer to the request in hand has come (so the upstream read that request).
    private(set) var answerStarted = false
    /// Bytes that followed a 101, for the tunnel (`removeHandler` hands them on).
    private var afterSwitch = BytesAfterSwitch()
    private var pendingRead = false
    /// How the body of the request being sent is framed (its head said).
    private var framing = HeadEncoding.Framing.neither
    /// Called once when the channel closes, so the pool forgets it.
    var onClose: ((UpstreamConnection) -> Void)?

    init(service: PublicService) {
        self.service = service
    }

    var isWritable: Bool { channel?.isWritable ?? false }
    var isActive: Bool { channel?.isActive ?? false }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.channel = context.channel
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var input = unwrapInboundIn(data)
        answerStarted = true
        if parser.isSwitched {
            afterSwitch.append(&input)
            return
        }
        // One event at a time: what the delegate does with one (release this connection, even
        // send it the next request) happens between two calls into the parser.
        while true {
            let event: UpstreamAnswerParser.Event?
            do {
                event = try parser.next(&input)
            } catch {
                return fail(context, reason: "\(error)")
            }
            guard let event else { break }
            guard let delegate else {
                // An answer nobody waits for any more (its client left): this connection is done.
                return fail(context, reason: "an answer nobody waits for")
            }
            switch event {
            case .head(let head):
                if !head.keepAlive { isReusable = false }
            case .end where parser.isSwitched:
                // What came behind the 101 is the tunnel's; the delegate switches to it now.
                afterSwitch.append(&input)
            case .body, .end:
                break
            }
            delegate.upstreamAnswer(event)
            if self.context == nil || parser.isSwitched { return }
        }
        // Bytes while no answer is due: an idle connection must stay silent.
        if input.readableBytes > 0 { fail(context, reason: "\(UpstreamAnswerParser.ParseError.unexpectedBytes)") }
    }

    /// The upstream broke the protocol: tell whoever waits, and close.
    private func fail(_ context: ChannelHandlerContext, reason: String) {
        isReusable = false
        let delegate = self.delegate
        self.delegate = nil
        delegate?.upstreamFailed(self, reason: reason)
        context.close(promise: nil)
    }

    /// Leaving the pipeline (for a tunnel, after a 101): the bytes that came behind the 101 go
    /// on to what follows.
    func removeHandler(context: ChannelHandlerContext, removalToken: ChannelHandlerContext.RemovalToken) {
        afterSwitch.handOn(context)
        self.context = nil
        context.leavePipeline(removalToken: removalToken)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        delegate?.upstreamReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        delegate?.upstreamWritabilityChanged(isWritable: context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        if readsPaused {
            pendingRead = true
        } else {
            context.read()
        }
    }

    func pauseReads() {
        readsPaused = true
    }

    func resumeReads() {
        readsPaused = false
        if pendingRead, let context {
            pendingRead = false
            context.read()
        }
    }

    /// Sends a request head (`ForwardedHeaders.writeRequest`): its answer is due next.
    func sendHead(_ bytes: ByteBuffer, framing: HeadEncoding.Framing, method: HTTPMethod, flush: Bool) {
        parser.expect(method: method)
        answerStarted = false
        send(.head(bytes, framing), flush: flush)
    }

    /// Writes `part` as bytes, framed as its head said: written here rather than by an encoder
    /// handler, so no part of the gateway's own type crosses the pipeline (a boxed `NIOAny` and a
    /// cast back per part).
    func send(_ part: UpstreamRequestPart, flush: Bool) {
        guard let context else { return }
        switch part {
        case .head(let bytes, let framing):
            self.framing = framing
            context.write(wrapOutboundOut(.byteBuffer(bytes)), promise: nil)
        case .body(let body):
            ChunkedFraming.write(body, chunked: framing == .chunked, context: context, promise: nil)
        case .end:
            ChunkedFraming.end(nil, chunked: framing == .chunked, context: context, promise: nil)
            framing = .neither
        }
        if flush { context.flush() }
    }

    func flush() {
        context?.flush()
    }

    /// Closes the connection; its delegate is not told (the caller is that delegate).
    func abandon() {
        isReusable = false
        delegate = nil
        context?.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        isReusable = false
        // An answer without a length ends with the connection: it is whole.
        if parser.connectionClosed(), let delegate { delegate.upstreamAnswer(.end) }
        let delegate = self.delegate
        self.delegate = nil
        delegate?.upstreamFailed(self, reason: "the connection closed")
        onClose?(self)
        onClose = nil
        self.context = nil
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        isReusable = false
        let delegate = self.delegate
        self.delegate = nil
        delegate?.upstreamFailed(self, reason: "\(error)")
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            // Idle in the pool for long, or silent mid-answer for longer than a stream may pause.
            isReusable = false
            let delegate = self.delegate
            self.delegate = nil
            delegate?.upstreamFailed(self, reason: "no data for too long")
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}
