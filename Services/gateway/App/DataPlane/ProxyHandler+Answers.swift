import CoreMetrics
import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import ServiceCore

/// What `ProxyHandler` writes to the client: heads with what the gateway adds to every answer,
/// its own answers (errors, preflights, `/health`), and the end of each exchange.
extension ProxyHandler {
    /// One of the gateway's own error answers. None may be stored by a browser or a shared cache:
    /// each says something about this one request (a limit, a timeout, a refused token), and on
    /// credential routes every answer is `no-store` anyway.
    func answer(_ error: AppError, for exchange: Exchange) {
        var headers: [(String, String)] = [("Content-Type", "application/json; charset=utf-8"), ("Cache-Control", "no-store")]
        for field in error.headers { headers.append((field.name.rawName, field.value)) }
        let body = ErrorBody(detail: error.detail, code: error.code, fields: error.fields, requestID: exchange.requestID)
        let data = (try? JSONCoding.encoder.encode(body)) ?? Data(#"{"detail":"error","code":"INTERNAL_ERROR"}"#.utf8)
        respond(status: HTTPResponseStatus(statusCode: error.status.code), headers: headers, body: data, for: exchange)
    }

    func respond(status: HTTPResponseStatus, headers extra: [(String, String)], body: Data?, for exchange: Exchange) {
        guard let context else { return }
        exchange.cancelTimers()
        timeouts.answerArrived()
        exchange.phase = .answered
        exchange.body.removeAll()
        // The rest of a large or unbounded body is not worth reading just to keep the connection.
        if !exchange.requestEnded {
            if !exchange.bufferWhole || exchange.bodyBytes > plane.limits.bufferBytes { exchange.keepAlive = false }
            exchange.discarding = true
        }
        let bytes = body.map { context.channel.allocator.buffer(bytes: $0) }
        write(status: status, headers: extra + [("Content-Length", String(bytes?.readableBytes ?? 0))], for: exchange)
        if let bytes, exchange.head.method != .HEAD { send(.body(.byteBuffer(bytes))) }
        exchange.responseEnded = true
        send(.end(nil), flush: true)
        record(exchange)
        if exchange.requestEnded || !exchange.keepAlive { finish(exchange) } else { resumeReadsIfPossible() }
    }

    /// Writes one of the gateway's own answer heads, with what the gateway adds to every answer
    /// (`AddedLines`, which the encoder writes straight as bytes).
    func write(status: HTTPResponseStatus, headers: [(String, String)], for exchange: Exchange) {
        let added = startAnswer(status: Int(status.code), for: exchange)
        let head = HTTPResponseHead(version: exchange.head.version, status: status, headers: HTTPHeaders(headers))
        send(.answerHead(head, added, to: exchange.head.method))
    }

    /// Writes an upstream's answer head as it came, less what the gateway drops
    /// (`UpstreamAnswerHead.dropsLine`) and plus what it adds to every answer; the upstream's own
    /// security headers win over the gateway's. On credential routes the answer is `no-store`,
    /// whatever the upstream said.
    func relay(_ head: UpstreamAnswerHead, for exchange: Exchange) {
        let method = exchange.head.method
        // Without a length, an HTTP/1.0 client's body can only end with the connection.
        if head.code != 204, head.code != 304, head.contentLength == nil, method != .HEAD, exchange.head.version.minor == 0 {
            exchange.keepAlive = false
        }
        let added = startAnswer(status: head.code, for: exchange, upstreamSecurity: head.security)
        let relayed = RelayedHead(
            head: head, added: added, version: exchange.head.version, method: method, noStore: exchange.plan?.access == .credentials
        )
        send(.relayedHead(relayed))
    }

    /// Writes `part` to the client as bytes (`GatewayResponseEncoder`), then flushes if asked.
    func send(_ part: GatewayResponsePart, flush: Bool = false, promise: EventLoopPromise<Void>? = nil) {
        guard let context else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        encoder.write(part, context: context, promise: promise)
        unflushed = true
        if flush { flushClient() }
    }

    /// Sends the client what was written to it (and what the encoder holds back), if anything.
    func flushClient() {
        guard unflushed, let context else { return }
        encoder.release(context: context)
        context.flush()
        unflushed = false
    }

    /// Marks the answer as started and returns the lines the gateway adds to its head: security
    /// headers (less those in `upstreamSecurity`), request id, rate limit, CORS, `Connection`.
    func startAnswer(status: Int, for exchange: Exchange, upstreamSecurity: SecurityHeaders.Set = .init()) -> AddedLines {
        exchange.responseStarted = true
        exchange.status = status
        var added = AddedLines(securityPresent: upstreamSecurity, requestID: exchange.requestID)
        if let plan = exchange.plan { added.rateLimit = RateLimitLines(plan.limit, policyName: plan.policy) }
        if !exchange.corsDone, let origin = exchange.facts.origin,
            let cors = plane.cors.responseHeaders(origin: origin, widgetRoute: exchange.plan.map { $0.access != .authenticated && $0.access != .credentials } ?? false)
        {
            added.extra = cors
        }
        if !exchange.keepAlive || closeWhenIdle {
            added.connection = .close
        } else if exchange.head.version == .http1_0 {
            added.connection = .keepAlive
        }
        return added
    }

    /// The answer has ended and the request has been read: on to the next request, or close.
    func finish(_ exchange: Exchange) {
        guard self.exchange === exchange, let context else { return }
        exchange.cancelTimers()
        self.exchange = nil
        if !exchange.keepAlive || closeWhenIdle || (inputClosed && queued.isEmpty) {
            context.close(promise: nil)
            return
        }
        timeouts.waitForNextRequest()
        drainQueue()
        resumeReadsIfPossible()
    }

    func record(_ exchange: Exchange) {
        let nanoseconds = Int64(NIODeadline.now().uptimeNanoseconds - exchange.start.uptimeNanoseconds)
        // A connection's requests mostly share their method, route and status: the last ones'
        // handles are kept here, so the shared table (a lock and two hashed strings) is skipped.
        if let last = lastMetrics, last.method == exchange.head.method, last.status == exchange.status, last.route == exchange.route {
            last.counter.increment()
            last.timer.recordNanoseconds(nanoseconds)
            return
        }
        let (counter, timer) = plane.metrics.handles(method: exchange.head.method.rawValue, route: exchange.route, status: exchange.status)
        counter.increment()
        timer.recordNanoseconds(nanoseconds)
        lastMetrics = LastMetrics(method: exchange.head.method, route: exchange.route, status: exchange.status, counter: counter, timer: timer)
    }

    /// The public port's own routes: whether the gateway is up, without upstream details (those
    /// are on the admin port).
    func ownAnswer(_ path: String?) -> Data? {
        let status: String
        switch path {
        case "/health": status = plane.monitor.snapshot().values.allSatisfy { $0.status == "up" } ? "ok" : "degraded"
        case "/live": status = "alive"
        case "/ready": status = "ready"
        default: return nil
        }
        return Data(#"{"status":"\#(status)","service":"gateway","timestamp":"\#(Date.now.formatted(.iso8601))"}"#.utf8)
    }

    /// The limiter's key for the client, as trusted proxies in front of the gateway report it
    /// (`TRUSTED_PROXIES`); the peer's own otherwise.
    func clientKey(_ head: RequestHead) -> String {
        guard peerIsTrusted else { return peerKey }
        return ClientAddress.limiterKey(
            for: ClientAddress.resolve(peer: peer, forwardedFor: head.values("x-forwarded-for"), trusted: plane.trustedProxies)
        )
    }

    /// Path and query of a request target; the path is nil for a target that is not origin-form
    /// (or absolute-form, whose path is taken).
    static func split(_ uri: String) -> (path: String?, query: String?) {
        let bytes = uri.utf8
        var start = bytes.startIndex
        if bytes.first != UInt8(ascii: "/") {
            // Absolute form (`http://host/path`): the path starts after the authority.
            guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")),
                bytes[..<colon].allSatisfy({ ($0 | 0x20) >= UInt8(ascii: "a") && ($0 | 0x20) <= UInt8(ascii: "z") }),
                bytes[colon...].starts(with: "://".utf8)
            else { return (nil, nil) }
            let authority = bytes.index(colon, offsetBy: 3)
            guard let end = bytes[authority...].firstIndex(where: { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") }) else {
                return ("/", nil)
            }
            start = end
        }
        // Searched over the string's contiguous bytes: `firstIndex(of:)` on the UTF-8 view steps an
        // index per byte, a tenth of the admission's cost on a short path.
        let offset = bytes.distance(from: bytes.startIndex, to: start)
        let markOffset = bytes.withContiguousStorageIfAvailable { $0[offset...].firstIndex(of: UInt8(ascii: "?")) }
            ?? bytes[start...].firstIndex(of: UInt8(ascii: "?")).map { bytes.distance(from: bytes.startIndex, to: $0) }
        guard let markOffset else {
            return (start == bytes.startIndex ? uri : String(uri[start...]), nil)
        }
        let mark = bytes.index(bytes.startIndex, offsetBy: markOffset)
        let path = start == mark ? "/" : String(uri[start..<mark])
        return (path, String(uri[uri.utf8.index(after: mark)...]))
    }

    static func newRequestID() -> String { RequestIDs.next() }
}
