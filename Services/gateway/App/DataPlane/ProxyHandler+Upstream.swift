import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import ServiceCore

/// The upstream half of `ProxyHandler`: taking a kept-alive connection of this event loop (or
/// opening one), sending the request, relaying the answer back, and what to say when the upstream
/// cannot be reached or does not answer.
extension ProxyHandler {
    func forward(_ plan: Admission.Forward, _ exchange: Exchange) {
        guard let address = plane.upstreams[plan.service] else { return answer(.notFound(), for: exchange) }
        exchange.phase = .forwarding
        exchange.plan = plan
        exchange.address = address
        exchange.route = Self.routeLabel(plan.service)
        if (exchange.declaredLength ?? 0) > plane.limits.maxBodyBytes {
            exchange.keepAlive = false
            return answer(.payloadTooLarge(limit: plane.limits.maxBodyBytes), for: exchange)
        }
        let head = exchange.head
        if !exchange.requestEnded, exchange.hasBody {
            if head.version == .http1_1, exchange.facts.expect?.lowercased() == "100-continue" {
                send(.head(HTTPResponseHead(version: head.version, status: .continue), to: head.method), flush: true)
            }
            scheduleBodyTimeout(exchange)
        }
        // A body read whole is read before an upstream connection is taken, so a slow client
        // never holds one (as nginx buffers bodies); a relayed body goes up as it comes.
        if !exchange.bufferWhole || exchange.requestEnded { acquireUpstream(exchange) }
        resumeReadsIfPossible()
    }

    func acquireUpstream(_ exchange: Exchange) {
        guard exchange.plan != nil, let address = exchange.address else { return }
        // A WebSocket gets a connection of its own: it never goes back to the pool.
        if !exchange.webSocket, let reused = pool.take(address.service) {
            attach(reused, reused: true, exchange)
        } else {
            connect(address, exchange)
        }
    }

    func connect(_ address: UpstreamAddress, _ exchange: Exchange) {
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

    func attach(_ upstream: UpstreamConnection, reused: Bool, _ exchange: Exchange) {
        upstream.delegate = self
        exchange.upstream = upstream
        exchange.reusedConnection = reused
        if context?.channel.isWritable == false { upstream.pauseReads() }
        timeouts.awaitAnswer(by: .now() + plane.limits.upstreamTimeout)
        if exchange.bufferWhole {
            if exchange.requestEnded { sendWhole(exchange, on: upstream) }
        } else {
            sendHead(exchange, bodyLength: exchange.declaredLength, on: upstream, flush: false)
            exchange.upstreamHeadSent = true
            for part in exchange.body { upstream.send(.body(.byteBuffer(part)), flush: false) }
            exchange.body.removeAll()
            if exchange.requestEnded {
                upstream.send(.end, flush: true)
                exchange.requestSent = true
            } else {
                upstream.flush()
            }
            resumeReadsIfPossible()
        }
    }

    /// A body read whole goes up with its head in one write. It is kept until the answer starts,
    /// so a kept-alive connection the upstream had closed meanwhile can be retried once.
    ///
    /// Its head says `Content-Length`, so the request's end adds nothing on the wire: no `.end` is
    /// sent (one trip less through the upstream pipeline per request); the last part flushes.
    func sendWhole(_ exchange: Exchange, on upstream: UpstreamConnection) {
        let length = exchange.body.reduce(0) { $0 + $1.readableBytes }
        sendHead(exchange, bodyLength: length, on: upstream, flush: exchange.body.isEmpty)
        for (index, part) in exchange.body.enumerated() {
            upstream.send(.body(.byteBuffer(part)), flush: index == exchange.body.count - 1)
        }
        exchange.upstreamHeadSent = true
        exchange.requestSent = true
    }

    /// Writes the request head the upstream is sent (`ForwardedHeaders.writeRequest`) and sends it.
    func sendHead(_ exchange: Exchange, bodyLength: Int?, on upstream: UpstreamConnection, flush: Bool) {
        let address = exchange.address!
        let plan = exchange.plan!
        let query = exchange.queryAuthorization != nil ? Self.withoutToken(exchange.query) : exchange.query
        var target = address.basePath + PathNormalizer.encodeForUpstream(plan.path)
        if let query { target += "?" + query }
        let (bytes, framing) = ForwardedHeaders.writeRequest(
            exchange.head, target: target, upstream: address, requestID: exchange.requestID, peer: peer,
            peerIsTrusted: peerIsTrusted, bodyLength: bodyLength, authorization: plan.authorization,
            hasAPIKeyHeader: exchange.facts.apiKey != nil,
            upgrade: exchange.webSocket ? ForwardedHeaders.Upgrade(authorization: exchange.queryAuthorization) : nil,
            allocator: context?.channel.allocator ?? ByteBufferAllocator()
        )
        upstream.sendHead(bytes, framing: framing, method: exchange.head.method, flush: flush)
    }

    /// The metrics label of requests forwarded to `service`, spelled once rather than per request.
    static func routeLabel(_ service: PublicService) -> String {
        switch service {
        case .auth: "proxy:auth"
        case .tenancy: "proxy:tenancy"
        case .billing: "proxy:billing"
        case .chat: "proxy:chat"
        }
    }

    func scheduleBodyTimeout(_ exchange: Exchange) {
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

    func bodyTimedOut(_ exchange: Exchange) {
        exchange.upstream?.abandon()
        exchange.upstream = nil
        exchange.keepAlive = false
        if exchange.responseStarted {
            context?.close(promise: nil)
        } else {
            answer(AppError(.requestTimeout, code: "REQUEST_TIMEOUT", detail: "The request body did not arrive in time"), for: exchange)
        }
    }

    func timedOut(_ exchange: Exchange) {
        let service = exchange.plan?.service.rawValue ?? "upstream"
        plane.logger.warning("upstream timed out", metadata: ["upstream": "\(service)", "request_id": "\(exchange.requestID)"])
        exchange.upstream?.abandon()
        exchange.upstream = nil
        if !exchange.requestEnded { exchange.keepAlive = false }
        answer(InternalCallError.timedOut(service: service).publicError, for: exchange)
    }

    func unavailable(_ exchange: Exchange, reason: String) {
        let service = exchange.plan?.service ?? .auth
        plane.monitor.markDown(service, reason: reason)
        plane.logger.warning("upstream unavailable", metadata: ["upstream": "\(service.rawValue)", "error": "\(reason)"])
        exchange.upstream = nil
        if !exchange.requestEnded { exchange.keepAlive = false }
        answer(InternalCallError.unavailable(service: service.rawValue, reason: reason).publicError, for: exchange)
    }

    // MARK: - From the upstream

    func upstreamAnswer(_ event: UpstreamAnswerParser.Event) {
        guard let exchange, context != nil else { return }
        switch event {
        case .head(let head) where head.code == 101:
            // The switch happens at this answer's end, which the parser gives right after.
            timeouts.answerArrived()
            guard exchange.webSocket else {
                exchange.upstream?.abandon()
                return unavailable(exchange, reason: "the upstream switched protocols unasked")
            }
            exchange.switching = head.headers
        case .head(let head):
            timeouts.answerArrived()
            exchange.body.removeAll()
            if let service = exchange.address?.service { plane.monitor.markUp(service) }
            relay(head, for: exchange)
        case .body(let buffer):
            send(.body(.byteBuffer(buffer)))
        case .end where exchange.switching != nil:
            switchToTunnel(exchange)
        case .end:
            exchange.responseEnded = true
            send(.end(nil), flush: true)
            if let upstream = exchange.upstream {
                exchange.upstream = nil
                if exchange.requestSent && !exchange.webSocket { pool.release(upstream) } else { upstream.abandon() }
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

    /// The end of one read from the upstream: what it brought goes to the client now (nothing to do
    /// when an answer's end was flushed already).
    func upstreamReadComplete() {
        flushClient()
    }

    /// Whether a request may reach its upstream twice: an idempotent method (RFC 9110 §9.2.2), or
    /// an `Idempotency-Key`, under which the services answer a repeat without acting twice.
    static func maySendTwice(_ exchange: Exchange) -> Bool {
        switch exchange.head.method {
        case .GET, .HEAD, .OPTIONS, .TRACE, .PUT, .DELETE: true
        default: exchange.facts.idempotencyKey
        }
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
        timeouts.answerArrived()
        // A kept-alive connection may have been closed by the upstream just as it was reused; a
        // request that is still whole in hand is sent once more on a new connection. Not when any
        // of an answer came (a malformed one): the upstream did read that request. And only a
        // request that may be sent twice (RFC 9110 §9.2.2): the upstream may have acted on it
        // before closing, so a POST without an `Idempotency-Key` is answered 503 instead, and the
        // client, which knows what it sent, decides.
        if exchange.reusedConnection, exchange.bufferWhole, !exchange.retried, !connection.answerStarted, Self.maySendTwice(exchange),
            let address = exchange.address
        {
            exchange.retried = true
            exchange.upstreamHeadSent = false
            exchange.requestSent = false
            return connect(address, exchange)
        }
        unavailable(exchange, reason: reason)
    }
}
