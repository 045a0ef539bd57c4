import NIOCore
import NIOHTTP1
import ServiceCore

/// Told by an upstream connection what its upstream sends; the downstream connection it serves.
protocol UpstreamDelegate: AnyObject {
    func upstreamResponse(_ part: HTTPClientResponsePart)
    func upstreamReadComplete()
    func upstreamWritabilityChanged(isWritable: Bool)
    /// The connection closed or failed before the answer ended.
    func upstreamFailed(_ connection: UpstreamConnection, reason: String)
}

/// One kept-alive HTTP/1.1 connection to an upstream, living on the event loop of the downstream
/// connections it serves, one request at a time. Reads from the upstream only while the
/// downstream client keeps up (`pauseReads`), so a slow client never makes the gateway buffer a
/// stream.
final class UpstreamConnection: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    let service: PublicService
    private(set) var channel: (any Channel)?
    private var context: ChannelHandlerContext?
    var delegate: (any UpstreamDelegate)?
    /// False once the upstream said `Connection: close`, failed, or closed.
    private(set) var isReusable = true
    private var readsPaused = false
    private var pendingRead = false
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
        let part = unwrapInboundIn(data)
        if case .head(let head) = part, !head.isKeepAlive { isReusable = false }
        guard let delegate else {
            // Nothing was asked: an idle connection must stay silent.
            isReusable = false
            context.close(promise: nil)
            return
        }
        delegate.upstreamResponse(part)
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

    func send(_ part: HTTPClientRequestPart, flush: Bool) {
        guard let context else { return }
        if flush {
            context.writeAndFlush(wrapOutboundOut(part), promise: nil)
        } else {
            context.write(wrapOutboundOut(part), promise: nil)
        }
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
