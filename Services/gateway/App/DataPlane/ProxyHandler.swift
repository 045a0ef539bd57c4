import CoreMetrics
import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import ServiceCore

/// The gateway's data plane for one client connection: reads its requests from the connection's
/// bytes (`RequestParser`), admits each (`Admission`), then
/// relays it to a kept-alive upstream connection of the same event loop and the answer back, part
/// by part, with backpressure both ways (read from one side only while the other keeps up, as
/// the GlueHandler of NIO's connect-proxy example does). No request leaves its event loop unless
/// it has to wait for something: a token seen for the first time, or a slice of shared quota.
final class ProxyHandler: ChannelDuplexHandler, RemovableChannelHandler, UpstreamDelegate {
    typealias InboundIn = ByteBuffer
    /// After an upgrade request: the bytes behind it, handed on to the tunnel that replaces HTTP.
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    let plane: DataPlane
    let pool: UpstreamPool
    let timeouts: ConnectionTimeoutHandler
    let peer: String
    /// Whether the peer is one of `TRUSTED_PROXIES`, whose `X-Forwarded-*` headers are believed.
    let peerIsTrusted: Bool
    /// The limiter's key for the peer, made once per connection rather than once per request.
    let peerKey: String
    var context: ChannelHandlerContext?
    /// Reads requests from the connection's bytes. Called here rather than as a handler of its own
    /// in front: a part of NIO's request type passed down the pipeline travels as a boxed `NIOAny`
    /// and is cast back, which cost more than scanning the head.
    var reader: RequestParser
    /// The reader refused the connection's bytes: nothing more is read from them.
    var readerFailed = false
    /// What came after a request switching protocols, for the tunnel (`removeHandler`).
    var afterSwitch = BytesAfterSwitch()
    /// Writes answers as bytes, called directly (not a handler of the pipeline).
    let encoder = GatewayResponseEncoder()
    /// Something was written to the client since its last flush.
    var unflushed = false
    /// The request being served; nil between requests.
    var exchange: Exchange?
    /// Bumped for every request, so late callbacks of an earlier one are recognised.
    var generation = 0
    var pendingRead = false
    /// Shutting down (NIO's quiescing): answer the request in hand, then close.
    var closeWhenIdle = false
    /// The client half-closed: answer what it sent, then close.
    var inputClosed = false
    /// The `Authorization` of this connection's last request admitted with a token, and its claims
    /// (`Admission.VerifiedAuthorization`).
    var verifiedAuthorization: Admission.VerifiedAuthorization?
    /// The metric handles of the last answered request (`record`).
    var lastMetrics: LastMetrics?
    struct LastMetrics {
        let method: HTTPMethod
        let route: String
        let status: Int
        let counter: Counter
        let timer: CoreMetrics.Timer
    }
    /// Pipelined request parts that arrived while an earlier answer was still going out.
    var queued = CircularBuffer<RequestPart>()
    /// Queued parts beyond this stop reading from the client until the queue drains.
    static let maxQueuedParts = 64

    init(plane: DataPlane, pool: UpstreamPool, timeouts: ConnectionTimeoutHandler, peer: String, maxHeaderBytes: Int) {
        self.reader = RequestParser(maxHeaderBytes: maxHeaderBytes)
        self.plane = plane
        self.pool = pool
        self.timeouts = timeouts
        self.peer = peer
        self.peerIsTrusted = IPAddress(peer).map { plane.trustedProxies.contains($0) } ?? false
        self.peerKey = ClientAddress.limiterKey(for: peer)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        timeouts.onAnswerOverdue = { [weak self] in
            // Called only while a request waits on its upstream's answer (`awaitAnswer(by:)`).
            guard let self, let exchange, !exchange.responseStarted else { return }
            timedOut(exchange)
        }
    }

    // MARK: - From the client

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !readerFailed else { return }
        var input = unwrapInboundIn(data)
        while !reader.isStopped {
            let part: RequestPart?
            do {
                part = try reader.next(&input)
            } catch {
                // Refused: answered 400 or 431 (`errorCaught`), and nothing more is read.
                readerFailed = true
                errorCaught(context: context, error: error)
                return
            }
            guard let part else { break }
            take(part)
        }
        if reader.isStopped { afterSwitch.append(&input) }
    }

    /// Leaving the pipeline (for a tunnel): what came after the upgrade request goes on as bytes.
    func removeHandler(context: ChannelHandlerContext, removalToken: ChannelHandlerContext.RemovalToken) {
        afterSwitch.handOn(context)
        context.leavePipeline(removalToken: removalToken)
    }

    func take(_ part: RequestPart) {
        // Pipelined requests wait their turn: answers go out in the order requests came.
        if !queued.isEmpty || exchange != nil, case .head = part {
            queued.append(part)
            return
        }
        if !queued.isEmpty {
            queued.append(part)
            return
        }
        receive(part)
    }

    func receive(_ part: RequestPart) {
        switch part {
        case .head(let head): begin(head)
        case .body(let buffer): receiveBody(buffer)
        case .end: endOfRequest()
        }
    }

    /// Serves queued pipelined parts until one starts a request that must wait.
    func drainQueue() {
        while let part = queued.first {
            if case .head = part, exchange != nil { break }
            queued.removeFirst()
            receive(part)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if let exchange, exchange.upstreamHeadSent, !exchange.requestSent { exchange.upstream?.flush() }
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if readsPaused {
            pendingRead = true
        } else {
            context.read()
        }
    }

    /// Stop reading the client while its request waits on a token check, an upstream connection,
    /// or an upstream that does not keep up with a relayed body.
    var readsPaused: Bool {
        if queued.count >= Self.maxQueuedParts { return true }
        guard let exchange, !exchange.requestEnded, !exchange.discarding else { return false }
        switch exchange.phase {
        case .admitting: return true
        case .forwarding:
            guard !exchange.bufferWhole else { return false }
            guard let upstream = exchange.upstream, exchange.upstreamHeadSent else { return true }
            return !upstream.isWritable
        case .answered: return false
        }
    }

    func resumeReadsIfPossible() {
        if pendingRead, !readsPaused, let context {
            pendingRead = false
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            exchange?.upstream?.resumeReads()
        } else {
            exchange?.upstream?.pauseReads()
        }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        // A client that leaves mid-request or mid-stream cancels the upstream request with it.
        if let exchange {
            exchange.cancelTimers()
            exchange.upstream?.abandon()
            exchange.upstream = nil
        }
        exchange = nil
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // The client stopped sending in the middle of a request: it will never be whole.
        if case ChannelEvent.inputClosed = event, !readerFailed, reader.isMidRequest {
            readerFailed = true
            errorCaught(context: context, error: HTTPParserError.invalidEOFState)
        }
        switch event {
        case ChannelEvent.inputClosed:
            // The client will send nothing more: answer what it sent, then close.
            inputClosed = true
            if exchange == nil && queued.isEmpty { context.close(promise: nil) }
        case is ChannelShouldQuiesceEvent:
            // Shutting down: the request in hand is answered (with `Connection: close`), then close.
            closeWhenIdle = true
            queued.removeAll()
            if exchange == nil { context.close(promise: nil) }
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError else {
            plane.logger.debug("client connection failed", metadata: ["error": "\(error)", "peer": "\(peer)"])
            context.close(promise: nil)
            return
        }
        // A malformed request (bad framing, a smuggling attempt, oversized headers) is never
        // forwarded: say why if no answer has started, then close.
        if let exchange, exchange.requestEnded || !queued.isEmpty {
            // It is a later, pipelined request that is malformed: finish the one in hand, then close.
            closeWhenIdle = true
            queued.removeAll()
            return
        }
        exchange?.upstream?.abandon()
        exchange?.upstream = nil
        guard exchange?.responseStarted != true else {
            context.close(promise: nil)
            return
        }
        let refusal: AppError =
            switch parserError {
            case .headerOverflow:
                AppError(HTTPResponse.Status(code: 431), code: "HEADERS_TOO_LARGE", detail: "Request headers are too large")
            default:
                AppError.badRequest("Malformed HTTP request (\(parserError))", code: "MALFORMED_REQUEST")
            }
        let exchange = self.exchange ?? Exchange(head: .refused(), requestID: Self.newRequestID(), bufferBytes: 0)
        self.exchange = exchange
        exchange.keepAlive = false
        exchange.requestEnded = true
        answer(refusal, for: exchange)
    }

    func begin(_ head: RequestHead) {
        timeouts.requestStarted()
        generation += 1
        let facts = head.facts
        let exchange = Exchange(
            head: head, requestID: RequestID.acceptable(facts.requestID) ?? Self.newRequestID(), bufferBytes: plane.limits.bufferBytes
        )
        self.exchange = exchange
        let (path, query) = Self.split(head.uri)
        exchange.query = query
        if facts.upgrade {
            exchange.webSocket = WebSocketHandshake.isUpgrade(head.httpHead)
            // The request reader reads nothing more after a request asking to switch protocols: unless
            // it becomes a WebSocket tunnel, the connection closes after the answer.
            if !exchange.webSocket { exchange.keepAlive = false }
        }

        if head.method == .GET || head.method == .HEAD, let own = ownAnswer(path) {
            return respond(status: .ok, headers: [("Content-Type", "application/json; charset=utf-8")], body: own, for: exchange)
        }
        if head.method == .OPTIONS, let origin = facts.origin, let requested = head.first("access-control-request-method") {
            switch plane.cors.preflight(
                origin: origin, requestMethod: requested, requestHeaders: head.first("access-control-request-headers"),
                widgetRoute: CORSPolicy.isWidgetRoute(path)
            ) {
            case .allow(let headers):
                exchange.corsDone = true
                return respond(status: .noContent, headers: headers, body: nil, for: exchange)
            case .refuse(let error):
                return answer(error, for: exchange)
            }
        }
        guard let path, let method = Self.requestMethod(head.method) else {
            return answer(.badRequest("Malformed request target", code: "BAD_PATH"), for: exchange)
        }
        var authorization = facts.authorization
        if exchange.webSocket, authorization == nil, let token = Self.queryToken(query) {
            // Browsers cannot set headers on a WebSocket: the token may come as `?token=`.
            authorization = "Bearer \(token)"
            exchange.queryAuthorization = authorization
        }
        let request = Admission.Request(
            method: method, path: path, sessionID: facts.sessionID,
            authorization: authorization, apiKey: facts.apiKey, clientKey: clientKey(head), verified: verifiedAuthorization
        )
        switch plane.admission.begin(request) {
        case .done(let outcome):
            admitted(outcome, exchange)
        case .suspended(let rest):
            exchange.phase = .admitting
            let generation = self.generation
            let handler = NIOLoopBound(self, eventLoop: context!.eventLoop)
            let eventLoop = context!.eventLoop
            Task {
                let outcome = await rest().resolved()
                eventLoop.execute {
                    let handler = handler.value
                    guard handler.generation == generation, let exchange = handler.exchange else { return }
                    handler.admitted(outcome, exchange)
                }
            }
        }
    }

    /// The method as the route table names it; the common ones without spelling and checking a string.
    static func requestMethod(_ method: HTTPMethod) -> HTTPRequest.Method? {
        switch method {
        case .GET: .get
        case .POST: .post
        case .PUT: .put
        case .PATCH: .patch
        case .DELETE: .delete
        case .HEAD: .head
        case .OPTIONS: .options
        default: HTTPRequest.Method(method.rawValue)
        }
    }

    func admitted(_ outcome: Admission.Outcome, _ exchange: Exchange) {
        switch outcome {
        case .refuse(let error) where exchange.webSocket:
            refuseWebSocket(error, exchange)
        case .refuse(let error):
            answer(error, for: exchange)
        case .options(let allow):
            respond(status: .noContent, headers: [("Allow", allow)], body: nil, for: exchange)
        case .forward(let plan):
            // A token sent as it is (not an API key's) is remembered for the connection's next request.
            if plan.authorization == .asSent, let claims = plan.claims, let authorization = exchange.queryAuthorization ?? exchange.facts.authorization,
                verifiedAuthorization?.authorization != authorization
            {
                verifiedAuthorization = Admission.VerifiedAuthorization(authorization: authorization, claims: claims)
            }
            forward(plan, exchange)
        }
    }

    func receiveBody(_ buffer: ByteBuffer) {
        guard let exchange, !exchange.discarding else { return }
        exchange.bodyBytes += buffer.readableBytes
        exchange.lastBodyActivity = .now()
        if exchange.bodyBytes > plane.limits.maxBodyBytes {
            exchange.upstream?.abandon()
            exchange.upstream = nil
            exchange.keepAlive = false
            if exchange.responseStarted { context?.close(promise: nil) } else { answer(.payloadTooLarge(limit: plane.limits.maxBodyBytes), for: exchange) }
            return
        }
        if let upstream = exchange.upstream, exchange.upstreamHeadSent {
            upstream.send(.body(.byteBuffer(buffer)), flush: false)
        } else {
            exchange.body.append(buffer)
        }
    }

    func endOfRequest() {
        guard let exchange else { return }
        exchange.requestEnded = true
        exchange.bodyTimer?.cancel()
        exchange.bodyTimer = nil
        if exchange.discarding || exchange.phase == .answered {
            if exchange.responseEnded { finish(exchange) }
            return
        }
        guard let upstream = exchange.upstream else {
            if exchange.phase == .forwarding, exchange.bufferWhole { acquireUpstream(exchange) }
            return
        }
        if exchange.upstreamHeadSent {
            upstream.send(.end, flush: true)
            exchange.requestSent = true
        } else if exchange.bufferWhole {
            sendWhole(exchange, on: upstream)
        }
    }
}
