import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import ServiceCore

/// WebSocket upgrades through the data plane: admitted like any request (the token may also come
/// as `?token=`), forwarded on a connection of their own, and once the upstream has answered 101,
/// both connections become one byte tunnel (`HTTPUpgradeSwitch`).
extension ProxyHandler {
    /// A browser cannot read the status of a failed handshake, only a close code: the gateway
    /// completes the handshake itself and closes at once, 1008 for a refused credential, 1013 for a
    /// rate limit. Anything else (no such route) is an ordinary HTTP answer.
    func refuseWebSocket(_ error: AppError, _ exchange: Exchange) {
        let code: UInt16
        switch error.status.code {
        case 401, 403: code = WebSocketHandshake.policyViolation
        case 429: code = WebSocketHandshake.tryAgainLater
        default: return answer(error, for: exchange)
        }
        guard let context, let rejection = WebSocketRejection(request: exchange.head.httpHead, code: code, reason: "\(error.code): \(error.detail)")
        else { return answer(error, for: exchange) }
        exchange.cancelTimers()
        exchange.responseStarted = true
        exchange.responseEnded = true
        exchange.status = Int(error.status.code)
        record(exchange)
        self.exchange = nil
        for part in rejection.parts.dropLast() { send(GatewayResponsePart(part, to: exchange.head.method)) }
        let written = context.eventLoop.makePromise(of: Void.self)
        send(.end(nil), flush: true, promise: written)
        written.futureResult.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }

    /// The upstream answered 101 and ended it: relay the 101, then leave HTTP on both connections.
    func switchToTunnel(_ exchange: Exchange) {
        guard let context, let upstream = exchange.upstream, let upstreamChannel = upstream.channel, let answer = exchange.switching
        else { return }
        exchange.cancelTimers()
        exchange.upstream = nil
        upstream.delegate = nil
        self.exchange = nil
        // A 101 switches to a WebSocket only with both of these (RFC 6455 §4.1); anything else is not one.
        let upgrade = answer[canonicalForm: "upgrade"].contains { $0.lowercased() == "websocket" }
        let connection = answer[canonicalForm: "connection"].contains { $0.lowercased() == "upgrade" }
        guard upgrade, connection else {
            plane.logger.warning("upstream answered 101 without a WebSocket upgrade", metadata: ["request_id": "\(exchange.requestID)"])
            upstream.abandon()
            context.close(promise: nil)
            return
        }
        var headers = HTTPHeaders()
        for (name, value) in answer where ["upgrade", "connection"].contains(name.lowercased()) || name.lowercased().hasPrefix("sec-websocket-") {
            headers.add(name: name, value: value)
        }
        headers.add(name: "X-Request-ID", value: exchange.requestID)
        send(.head(HTTPResponseHead(version: .http1_1, status: .switchingProtocols, headers: headers), to: exchange.head.method))
        send(.end(nil), flush: true)
        exchange.status = 101
        record(exchange)
        do {
            _ = try HTTPUpgradeSwitch.tunnel(client: context.channel, requestReader: self, upstream: upstreamChannel, answerReader: upstream)
            if let claims = exchange.plan?.claims { plane.tunnels.add(context.channel, claims: claims) }
        } catch {
            upstream.abandon()
            context.close(promise: nil)
        }
    }

    /// The value of a `token` query parameter, percent-decoded.
    static func queryToken(_ query: String?) -> String? {
        guard let query else { return nil }
        for pair in query.split(separator: "&") where pair.hasPrefix("token=") {
            let value = pair.dropFirst("token=".count).replacingOccurrences(of: "+", with: " ")
            return value.removingPercentEncoding.flatMap { $0.isEmpty ? nil : $0 }
        }
        return nil
    }

    /// The query without its `token` parameter (nil when nothing else is left).
    static func withoutToken(_ query: String?) -> String? {
        guard let query else { return nil }
        let kept = query.split(separator: "&").filter { !$0.hasPrefix("token=") }
        return kept.isEmpty ? nil : kept.joined(separator: "&")
    }
}
