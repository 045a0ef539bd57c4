import NIOHTTP1
import ServiceCore

/// How headers change on their way through the gateway, in both directions.
enum ForwardedHeaders {
    /// Meaningful for one connection only (RFC 9110 §7.6.1); never forwarded.
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade",
        "proxy-connection",
    ]

    /// Set by the gateway itself, or never to be accepted from outside.
    static let replacedOnRequests: Set<String> = ["host", "content-length", "x-service-token", "x-request-id", "expect"]

    /// The request head the upstream is sent. `bodyLength` is the exact length of a body read
    /// whole, nil for a relayed (chunked) one, 0 for none.
    static func request(
        _ head: HTTPRequestHead, target: String, upstream: UpstreamAddress, requestID: String, peer: String,
        peerIsTrusted: Bool, bodyLength: Int?
    ) -> HTTPRequestHead {
        var headers = HTTPHeaders()
        headers.reserveCapacity(head.headers.count + 6)
        let connectionTokens = head.headers[canonicalForm: "connection"].map { $0.lowercased() }
        for (name, value) in head.headers {
            let lower = name.lowercased()
            if hopByHop.contains(lower) || replacedOnRequests.contains(lower) { continue }
            if !connectionTokens.isEmpty && connectionTokens.contains(where: { $0 == lower }) { continue }
            // From anyone but a trusted proxy, these are the client's own claims: replaced, not passed on.
            if !peerIsTrusted && lower.hasPrefix("x-forwarded-") { continue }
            headers.add(name: name, value: value)
        }
        headers.add(name: "host", value: upstream.authority)
        headers.add(name: "x-request-id", value: requestID)
        if let existing = headers.first(name: "x-forwarded-for") {
            headers.replaceOrAdd(name: "x-forwarded-for", value: "\(existing), \(peer)")
        } else {
            headers.add(name: "x-forwarded-for", value: peer)
        }
        if !headers.contains(name: "x-forwarded-proto") { headers.add(name: "x-forwarded-proto", value: "http") }
        if let host = head.headers.first(name: "host") { headers.replaceOrAdd(name: "x-forwarded-host", value: host) }
        switch bodyLength {
        case .none: headers.add(name: "transfer-encoding", value: "chunked")
        case .some(0) where !head.method.mayHaveBody: break
        case .some(let length): headers.add(name: "content-length", value: String(length))
        }
        return HTTPRequestHead(version: .http1_1, method: head.method, uri: target, headers: headers)
    }

    /// The upstream's answer without what only concerned the gateway's connection to it.
    static func response(_ upstream: HTTPHeaders, into headers: inout HTTPHeaders) {
        let connectionTokens = upstream[canonicalForm: "connection"].map { $0.lowercased() }
        for (name, value) in upstream {
            let lower = name.lowercased()
            if hopByHop.contains(lower) { continue }
            if !connectionTokens.isEmpty && connectionTokens.contains(where: { $0 == lower }) { continue }
            headers.add(name: name, value: value)
        }
    }
}

extension HTTPMethod {
    /// Methods whose requests carry a body by convention; others get no `Content-Length: 0`.
    var mayHaveBody: Bool {
        switch self {
        case .POST, .PUT, .PATCH: true
        default: false
        }
    }
}
