import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import ServiceCore

/// The gateway's data plane for one client connection: admits each request (`Admission`), then
/// relays it to a kept-alive upstream connection of the same event loop and the answer back, part
/// by part, with backpressure both ways (read from one side only while the other keeps up, as
/// the GlueHandler of NIO's connect-proxy example does). No request leaves its event loop unless
/// its token has to be verified for the first time.
final class ProxyHandler: ChannelDuplexHandler, RemovableChannelHandler, UpstreamDelegate {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let plane: DataPlane
    private let pool: UpstreamPool
    private let timeouts: ConnectionTimeoutHandler
    private let peer: String
    /// Whether the peer is one of `TRUSTED_PROXIES`, whose `X-Forwarded-*` headers are believed.
    private let peerIsTrusted: Bool
    private var context: ChannelHandlerContext?
    /// The request being served; nil between requests.
    private var exchange: Exchange?
    /// Bumped for every request, so late callbacks of an earlier one are recognised.
    private var generation = 0
    private var pendingRead = false
    private var closeWhenIdle = false

    init(plane: DataPlane, pool: UpstreamPool, timeouts: ConnectionTimeoutHandler, peer: String) {
        self.plane = plane
        self.pool = pool
        self.timeouts = timeouts
        self.peer = peer
        self.peerIsTrusted = IPAddress(peer).map { plane.trustedProxies.contains($0) } ?? false
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    // MARK: - From the client

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): begin(head)
        case .body(let buffer): receiveBody(buffer)
        case .end: endOfRequest()
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
    private var readsPaused: Bool {
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

    private func resumeReadsIfPossible() {
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
        if case ChannelEvent.inputClosed = event {
            // The client will send nothing more: finish what it asked, then close.
            if exchange == nil { context.close(promise: nil) } else { closeWhenIdle = true }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError else {
            plane.logger.debug("client connection failed", metadata: ["error": "\(error)", "peer": "\(peer)"])
            context.close(promise: nil)
            return
        }
        // A malformed request (bad framing, a smuggling attempt, oversized headers) is never
        // forwarded: say why if no answer has started, then close.
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
        let exchange = self.exchange ?? Exchange(
            head: HTTPRequestHead(version: .http1_1, method: .GET, uri: "/"), requestID: Self.newRequestID(), bufferBytes: 0
        )
        self.exchange = exchange
        exchange.keepAlive = false
        exchange.requestEnded = true
        answer(refusal, for: exchange)
    }

    private func begin(_ head: HTTPRequestHead) {
        timeouts.requestStarted()
        generation += 1
        let exchange = Exchange(
            head: head, requestID: RequestID.acceptable(head.headers.first(name: "x-request-id")) ?? Self.newRequestID(),
            bufferBytes: plane.limits.bufferBytes
        )
        self.exchange = exchange
        exchange.origin = head.headers.first(name: "origin")
        let (path, _) = Self.split(head.uri)

        if head.method == .GET || head.method == .HEAD, let own = ownAnswer(path) {
            return respond(status: .ok, headers: [("Content-Type", "application/json; charset=utf-8")], body: own, for: exchange)
        }
        if head.method == .OPTIONS, let origin = exchange.origin, let requested = head.headers.first(name: "access-control-request-method") {
            switch plane.cors.preflight(
                origin: origin, requestMethod: requested, requestHeaders: head.headers.first(name: "access-control-request-headers")
            ) {
            case .allow(let headers):
                exchange.corsDone = true
                return respond(status: .noContent, headers: headers, body: nil, for: exchange)
            case .refuse(let error):
                return answer(error, for: exchange)
            }
        }
        guard let path, let method = HTTPRequest.Method(head.method.rawValue) else {
            return answer(.badRequest("Malformed request target", code: "BAD_PATH"), for: exchange)
        }
        let request = Admission.Request(
            method: method, path: path, sessionID: head.headers.first(name: "x-session-id"),
            authorization: head.headers.first(name: "authorization"), clientAddress: clientAddress(head)
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

    private func admitted(_ outcome: Admission.Outcome, _ exchange: Exchange) {
        switch outcome {
        case .refuse(let error):
            answer(error, for: exchange)
        case .options(let allow):
            respond(status: .noContent, headers: [("Allow", allow)], body: nil, for: exchange)
        case .forward(let plan):
            forward(plan, exchange)
        }
    }

    private func receiveBody(_ buffer: ByteBuffer) {
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

    private func endOfRequest() {
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
            upstream.send(.end(nil), flush: true)
            exchange.requestSent = true
        } else if exchange.bufferWhole {
            sendWhole(exchange, on: upstream)
        }
    }

    // MARK: - To the upstream

    private func forward(_ plan: Admission.Forward, _ exchange: Exchange) {
        guard let address = plane.upstreams[plan.service] else { return answer(.notFound(), for: exchange) }
        exchange.phase = .forwarding
        exchange.plan = plan
        exchange.address = address
        exchange.route = "proxy:\(plan.service.rawValue)"
        if (exchange.declaredLength ?? 0) > plane.limits.maxBodyBytes {
            exchange.keepAlive = false
            return answer(.payloadTooLarge(limit: plane.limits.maxBodyBytes), for: exchange)
        }
        let head = exchange.head
        if !exchange.requestEnded, exchange.hasBody {
            if head.version == .http1_1, head.headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" }) {
                context?.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .continue))), promise: nil)
            }
            scheduleBodyTimeout(exchange)
        }
        // A body read whole is read before an upstream connection is taken, so a slow client
        // never holds one (as nginx buffers bodies); a relayed body goes up as it comes.
        if !exchange.bufferWhole || exchange.requestEnded { acquireUpstream(exchange) }
        resumeReadsIfPossible()
    }

    private func acquireUpstream(_ exchange: Exchange) {
        guard let plan = exchange.plan, let address = exchange.address else { return }
        if let reused = pool.take(plan.service) {
            attach(reused, reused: true, exchange)
        } else {
            connect(address, exchange)
        }
    }

    private func connect(_ address: UpstreamAddress, _ exchange: Exchange) {
        let generation = self.generation
        pool.connect(to: address) { [self] result in
            guard self.generation == generation, self.exchange === exchange, context != nil else {
                if case .success(let connection) = result { pool.release(connection) }
                return
            }
            switch result {
            case .success(let connection):
                attach(connection, reused: false, exchange)
            case .failure(let error):
                unavailable(exchange, reason: "\(error)")
            }
        }
    }

    private func attach(_ upstream: UpstreamConnection, reused: Bool, _ exchange: Exchange) {
        upstream.delegate = self
        exchange.upstream = upstream
        exchange.reusedConnection = reused
        if context?.channel.isWritable == false { upstream.pauseReads() }
        let timeout = plane.limits.upstreamTimeout
        let generation = self.generation
        exchange.headTimer = context?.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
            guard self.generation == generation, let exchange = self.exchange, !exchange.responseStarted else { return }
            timedOut(exchange)
        }
        if exchange.bufferWhole {
            if exchange.requestEnded { sendWhole(exchange, on: upstream) }
        } else {
            upstream.send(.head(upstreamHead(exchange, bodyLength: exchange.declaredLength)), flush: false)
            exchange.upstreamHeadSent = true
            for part in exchange.body { upstream.send(.body(.byteBuffer(part)), flush: false) }
            exchange.body.removeAll()
            if exchange.requestEnded {
                upstream.send(.end(nil), flush: true)
                exchange.requestSent = true
            } else {
                upstream.flush()
            }
            resumeReadsIfPossible()
        }
    }

    /// A body read whole goes up with its head in one write. It is kept until the answer starts,
    /// so a kept-alive connection the upstream had closed meanwhile can be retried once.
    private func sendWhole(_ exchange: Exchange, on upstream: UpstreamConnection) {
        let length = exchange.body.reduce(0) { $0 + $1.readableBytes }
        upstream.send(.head(upstreamHead(exchange, bodyLength: length)), flush: false)
        for part in exchange.body { upstream.send(.body(.byteBuffer(part)), flush: false) }
        upstream.send(.end(nil), flush: true)
        exchange.upstreamHeadSent = true
        exchange.requestSent = true
    }

    private func upstreamHead(_ exchange: Exchange, bodyLength: Int?) -> HTTPRequestHead {
        let address = exchange.address!
        let (_, query) = Self.split(exchange.head.uri)
        var target = address.basePath + PathNormalizer.encodeForUpstream(exchange.plan!.path)
        if let query { target += "?" + query }
        return ForwardedHeaders.request(
            exchange.head, target: target, upstream: address, requestID: exchange.requestID, peer: peer,
            peerIsTrusted: peerIsTrusted, bodyLength: bodyLength
        )
    }

    private func scheduleBodyTimeout(_ exchange: Exchange) {
        let timeout = plane.limits.bodyTimeout
        let generation = self.generation
        exchange.lastBodyActivity = .now()
        func arm(at deadline: NIODeadline) {
            exchange.bodyTimer = context?.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
                guard self.generation == generation, self.exchange === exchange, !exchange.requestEnded else { return }
                // A body read whole has one deadline; a relayed one may only pause that long.
                let next = exchange.lastBodyActivity + timeout
                if !exchange.bufferWhole, next > .now() { return arm(at: next) }
                bodyTimedOut(exchange)
            }
        }
        arm(at: .now() + timeout)
    }

    private func bodyTimedOut(_ exchange: Exchange) {
        exchange.upstream?.abandon()
        exchange.upstream = nil
        exchange.keepAlive = false
        if exchange.responseStarted {
            context?.close(promise: nil)
        } else {
            answer(AppError(.requestTimeout, code: "REQUEST_TIMEOUT", detail: "The request body did not arrive in time"), for: exchange)
        }
    }

    private func timedOut(_ exchange: Exchange) {
        let service = exchange.plan?.service.rawValue ?? "upstream"
        plane.logger.warning("upstream timed out", metadata: ["upstream": "\(service)", "request_id": "\(exchange.requestID)"])
        exchange.upstream?.abandon()
        exchange.upstream = nil
        if !exchange.requestEnded { exchange.keepAlive = false }
        answer(InternalCallError.timedOut(service: service).publicError, for: exchange)
    }

    private func unavailable(_ exchange: Exchange, reason: String) {
        let service = exchange.plan?.service ?? .auth
        plane.monitor.markDown(service, reason: reason)
        plane.logger.warning("upstream unavailable", metadata: ["upstream": "\(service.rawValue)", "error": "\(reason)"])
        exchange.upstream = nil
        if !exchange.requestEnded { exchange.keepAlive = false }
        answer(InternalCallError.unavailable(service: service.rawValue, reason: reason).publicError, for: exchange)
    }

    // MARK: - From the upstream

    func upstreamResponse(_ part: HTTPClientResponsePart) {
        guard let exchange, let context else { return }
        switch part {
        case .head(let head):
            guard head.status.code >= 200 else { return }
            exchange.headTimer?.cancel()
            exchange.headTimer = nil
            exchange.body.removeAll()
            plane.monitor.markUp(exchange.plan!.service)
            var headers = HTTPHeaders()
            headers.reserveCapacity(head.headers.count + 16)
            ForwardedHeaders.response(head.headers, into: &headers)
            if exchange.plan?.access == .credentials { headers.replaceOrAdd(name: "cache-control", value: "no-store") }
            write(HTTPResponseHead(version: exchange.head.version, status: head.status, headers: headers), for: exchange)
        case .body(let buffer):
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        case .end:
            exchange.responseEnded = true
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            if let upstream = exchange.upstream {
                exchange.upstream = nil
                if exchange.requestSent { pool.release(upstream) } else { upstream.abandon() }
            }
            record(exchange)
            if exchange.requestEnded {
                finish(exchange)
            } else {
                // Answered before the whole body came (an early 4xx): drop the rest, then go on.
                exchange.discarding = true
                resumeReadsIfPossible()
            }
        }
    }

    func upstreamReadComplete() {
        context?.flush()
    }

    func upstreamWritabilityChanged(isWritable: Bool) {
        if isWritable { resumeReadsIfPossible() }
    }

    func upstreamFailed(_ connection: UpstreamConnection, reason: String) {
        guard let exchange, exchange.upstream === connection else { return }
        exchange.upstream = nil
        guard !exchange.responseStarted else {
            // Cut off mid-answer: the client must not take a truncated answer for a whole one.
            context?.close(promise: nil)
            return
        }
        exchange.headTimer?.cancel()
        exchange.headTimer = nil
        // A kept-alive connection may have been closed by the upstream just as it was reused; a
        // request that is still whole in hand is sent once more on a new connection.
        if exchange.reusedConnection, exchange.bufferWhole, !exchange.retried, let address = exchange.address {
            exchange.retried = true
            exchange.upstreamHeadSent = false
            exchange.requestSent = false
            return connect(address, exchange)
        }
        unavailable(exchange, reason: reason)
    }

    // MARK: - To the client

    /// One of the gateway's own answers: an error, a preflight, `/health`.
    private func answer(_ error: AppError, for exchange: Exchange) {
        var headers: [(String, String)] = [("Content-Type", "application/json; charset=utf-8")]
        for field in error.headers { headers.append((field.name.rawName, field.value)) }
        let body = ErrorBody(detail: error.detail, code: error.code, fields: error.fields, requestID: exchange.requestID)
        let data = (try? JSONCoding.encoder.encode(body)) ?? Data(#"{"detail":"error","code":"INTERNAL_ERROR"}"#.utf8)
        respond(status: HTTPResponseStatus(statusCode: error.status.code), headers: headers, body: data, for: exchange)
    }

    private func respond(status: HTTPResponseStatus, headers extra: [(String, String)], body: Data?, for exchange: Exchange) {
        guard let context else { return }
        exchange.cancelTimers()
        exchange.phase = .answered
        exchange.body.removeAll()
        // The rest of a large or unbounded body is not worth reading just to keep the connection.
        if !exchange.requestEnded {
            if !exchange.bufferWhole || exchange.bodyBytes > plane.limits.bufferBytes { exchange.keepAlive = false }
            exchange.discarding = true
        }
        var headers = HTTPHeaders(extra)
        let bytes = body.map { context.channel.allocator.buffer(bytes: $0) }
        headers.replaceOrAdd(name: "content-length", value: String(bytes?.readableBytes ?? 0))
        write(HTTPResponseHead(version: exchange.head.version, status: status, headers: headers), for: exchange)
        if let bytes, exchange.head.method != .HEAD { context.write(wrapOutboundOut(.body(.byteBuffer(bytes))), promise: nil) }
        exchange.responseEnded = true
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        record(exchange)
        if exchange.requestEnded || !exchange.keepAlive { finish(exchange) } else { resumeReadsIfPossible() }
    }

    /// Writes an answer's head with what the gateway adds to every answer.
    private func write(_ head: HTTPResponseHead, for exchange: Exchange) {
        var head = head
        exchange.responseStarted = true
        exchange.status = Int(head.status.code)
        for (name, value) in SecurityHeaders.fields where !head.headers.contains(name: name) { head.headers.add(name: name, value: value) }
        head.headers.replaceOrAdd(name: "x-request-id", value: exchange.requestID)
        if let plan = exchange.plan {
            for (name, value) in RateLimitHeaderValues(plan.limit, policyName: plan.policy).fields {
                head.headers.replaceOrAdd(name: name, value: value)
            }
        }
        if !exchange.corsDone, let origin = exchange.origin, let cors = plane.cors.responseHeaders(origin: origin) {
            for (name, value) in cors where name != "Vary" { head.headers.replaceOrAdd(name: name, value: value) }
            if cors.contains(where: { $0.0 == "Vary" }) { head.headers.add(name: "vary", value: "Origin") }
        }
        if !exchange.keepAlive || closeWhenIdle {
            head.headers.replaceOrAdd(name: "connection", value: "close")
        } else if exchange.head.version == .http1_0 {
            head.headers.replaceOrAdd(name: "connection", value: "keep-alive")
        }
        context?.write(wrapOutboundOut(.head(head)), promise: nil)
    }

    /// The answer has ended and the request has been read: on to the next request, or close.
    private func finish(_ exchange: Exchange) {
        guard self.exchange === exchange, let context else { return }
        exchange.cancelTimers()
        self.exchange = nil
        if !exchange.keepAlive || closeWhenIdle {
            context.close(promise: nil)
            return
        }
        timeouts.waitForNextRequest()
        resumeReadsIfPossible()
    }

    private func record(_ exchange: Exchange) {
        plane.metrics.record(
            method: exchange.head.method.rawValue, route: exchange.route, status: exchange.status,
            nanoseconds: Int64(NIODeadline.now().uptimeNanoseconds - exchange.start.uptimeNanoseconds)
        )
    }

    // MARK: - Helpers

    /// The public port's own routes: whether the gateway is up, without upstream details (those
    /// are on the admin port).
    private func ownAnswer(_ path: String?) -> Data? {
        let status: String
        switch path {
        case "/health": status = plane.monitor.snapshot().values.allSatisfy { $0.status == "up" } ? "ok" : "degraded"
        case "/live": status = "alive"
        case "/ready": status = "ready"
        default: return nil
        }
        return Data(#"{"status":"\#(status)","service":"gateway","timestamp":"\#(Date.now.formatted(.iso8601))"}"#.utf8)
    }

    /// The client, as trusted proxies in front of the gateway report it (`TRUSTED_PROXIES`).
    private func clientAddress(_ head: HTTPRequestHead) -> String {
        guard peerIsTrusted else { return peer }
        return ClientAddress.resolve(peer: peer, forwardedFor: head.headers["x-forwarded-for"], trusted: plane.trustedProxies)
    }

    /// Path and query of a request target; the path is nil for a target that is not origin-form
    /// (or absolute-form, whose path is taken).
    static func split(_ uri: String) -> (path: String?, query: String?) {
        var target = Substring(uri)
        if !target.hasPrefix("/") {
            guard let scheme = target.range(of: "://"), target[..<scheme.lowerBound].allSatisfy(\.isLetter) else { return (nil, nil) }
            let afterAuthority = target[scheme.upperBound...]
            target = afterAuthority.firstIndex(where: { $0 == "/" || $0 == "?" }).map { afterAuthority[$0...] } ?? "/"
            if target.hasPrefix("?") { target = "/" + target }
        }
        guard let mark = target.firstIndex(of: "?") else { return (String(target), nil) }
        return (String(target[..<mark]), String(target[target.index(after: mark)...]))
    }

    static func newRequestID() -> String { UUID().uuidString.lowercased() }
}

/// One request's journey through `ProxyHandler`.
final class Exchange {
    enum Phase {
        case admitting
        case forwarding
        case answered
    }

    let head: HTTPRequestHead
    let requestID: String
    let start = NIODeadline.now()
    var keepAlive: Bool
    var phase = Phase.forwarding
    var origin: String?
    var corsDone = false
    var route = "NotFound"
    var status = 0
    var plan: Admission.Forward?
    var address: UpstreamAddress?

    var requestEnded = false
    var bodyBytes = 0
    /// The body's `Content-Length` (0 without one); nil for a chunked body.
    let declaredLength: Int?
    var hasBody: Bool { declaredLength != 0 }
    /// Body parts not yet sent upstream (all of them, for a body read whole).
    var body: [ByteBuffer] = []
    /// Read the whole body before going upstream (a declared length within `bufferBytes`).
    var bufferWhole: Bool
    var discarding = false
    var lastBodyActivity = NIODeadline.now()
    var bodyTimer: Scheduled<Void>?

    var upstream: UpstreamConnection?
    var reusedConnection = false
    var retried = false
    var upstreamHeadSent = false
    var requestSent = false
    var headTimer: Scheduled<Void>?

    var responseStarted = false
    var responseEnded = false

    init(head: HTTPRequestHead, requestID: String, bufferBytes: Int) {
        self.head = head
        self.requestID = requestID
        self.keepAlive = head.isKeepAlive
        let chunked = head.headers[canonicalForm: "transfer-encoding"].contains { $0.lowercased() == "chunked" }
        self.declaredLength = chunked ? nil : head.headers.first(name: "content-length").flatMap { Int($0) } ?? 0
        self.bufferWhole = (declaredLength ?? .max) <= bufferBytes
    }

    func cancelTimers() {
        headTimer?.cancel()
        headTimer = nil
        bodyTimer?.cancel()
        bodyTimer = nil
    }
}

/// Seed 000's security headers, on every answer the gateway gives or relays.
enum SecurityHeaders {
    static let fields: [(String, String)] = [
        ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
        ("Strict-Transport-Security", "max-age=31536000; includeSubDomains"),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("X-XSS-Protection", "1; mode=block"),
        ("Referrer-Policy", "no-referrer"),
    ]
}
