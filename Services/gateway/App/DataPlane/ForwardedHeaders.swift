import NIOHTTP1
import ServiceCore

/// How headers change on their way through the gateway, in both directions. Runs for every
/// header of every request, so names are matched on their bytes, case-insensitively, without
/// lower-casing copies.
enum ForwardedHeaders {
    /// What the gateway does with a header it relays.
    enum Kind {
        case relayed
        /// Meaningful for one connection only (RFC 9110 §7.6.1), or set by the gateway itself.
        case dropped
        case forwardedFor
        case forwardedOther
    }

    static let hopByHop = [
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade",
        "proxy-connection",
    ]

    /// Set by the gateway on requests, or never to be accepted from outside.
    static let replacedOnRequests = ["host", "content-length", "x-service-token", "x-request-id", "expect"]

    /// Set by the gateway on answers: an upstream's own values would contradict the gateway's.
    static let replacedOnResponses = [
        "x-request-id", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "ratelimit", "ratelimit-policy",
        "access-control-allow-origin", "access-control-allow-credentials", "access-control-expose-headers",
    ]

    /// The request side's rules, found by the name's length first (`NameTable`).
    private static let requestKinds = NameTable(
        hopByHop.map { ($0, Kind.dropped) } + replacedOnRequests.map { ($0, Kind.dropped) } + [("x-forwarded-for", Kind.forwardedFor)]
    )

    /// True when `name` equals `lowercased` ignoring ASCII case.
    @inline(__always)
    static func matches(_ name: String, _ lowercased: String) -> Bool {
        var name = name
        return name.withUTF8 { bytes in
            guard bytes.count == lowercased.utf8.count else { return false }
            var index = 0
            for expected in lowercased.utf8 {
                let byte = bytes[index]
                let folded = byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte
                if folded != expected { return false }
                index += 1
            }
            return true
        }
    }

    static func kindOnRequest(_ name: String) -> Kind {
        if let kind = requestKinds[name] { return kind }
        if name.utf8.count > 12, name.utf8.first.map({ $0 | 0x20 }) == UInt8(ascii: "x"), matches(String(name.prefix(12)), "x-forwarded-") {
            return .forwardedOther
        }
        return .relayed
    }

    /// Header names a `Connection` header lists beyond `keep-alive` and `close`: those are hop-by-hop
    /// too (RFC 9110 §7.6.1). Usually none, found without splitting anything.
    static func connectionTokens(_ headers: HTTPHeaders) -> [String] {
        guard let value = headers.first(name: "connection") else { return [] }
        if matches(value, "keep-alive") || matches(value, "close") { return [] }
        return headers[canonicalForm: "connection"].map { $0.lowercased() }.filter { $0 != "keep-alive" && $0 != "close" }
    }

    /// The request head the upstream is sent. `bodyLength` is the exact length of a body read
    /// whole, nil for a relayed (chunked) one, 0 for none. An API key never goes further than the
    /// gateway: with `hasAPIKeyHeader`, `X-API-Key` is dropped, and `authorization` says what
    /// becomes of `Authorization`. Neither costs a request without a key anything per header.
    static func request(
        _ head: HTTPRequestHead, target: String, upstream: UpstreamAddress, requestID: String, peer: String,
        peerIsTrusted: Bool, bodyLength: Int?, authorization: Admission.UpstreamAuthorization = .asSent, hasAPIKeyHeader: Bool = false
    ) -> HTTPRequestHead {
        let replacesAuthorization = authorization != .asSent
        var headers: [(String, String)] = []
        headers.reserveCapacity(head.headers.count + 8)
        let connectionTokens = connectionTokens(head.headers)
        var forwardedFor: String?
        var hasProto = false
        for (name, value) in head.headers {
            switch kindOnRequest(name) {
            case .dropped:
                continue
            case .forwardedFor:
                // From anyone but a trusted proxy, these are the client's own claims: replaced, not passed on.
                if peerIsTrusted { forwardedFor = forwardedFor.map { "\($0), \(value)" } ?? value }
                continue
            case .forwardedOther:
                guard peerIsTrusted else { continue }
                if matches(name, "x-forwarded-proto") { hasProto = true }
            case .relayed:
                break
            }
            if !connectionTokens.isEmpty && connectionTokens.contains(where: { matches(name, $0) }) { continue }
            if matches(name, "x-forwarded-host") { continue }
            if replacesAuthorization && matches(name, "authorization") { continue }
            if hasAPIKeyHeader && matches(name, "x-api-key") { continue }
            headers.append((name, value))
        }
        if case .replaced(let value) = authorization { headers.append(("authorization", value)) }
        headers.append(("host", upstream.authority))
        headers.append(("x-request-id", requestID))
        headers.append(("x-forwarded-for", forwardedFor.map { "\($0), \(peer)" } ?? peer))
        if !hasProto { headers.append(("x-forwarded-proto", "http")) }
        if let host = head.headers.first(name: "host") { headers.append(("x-forwarded-host", host)) }
        switch bodyLength {
        case .none: headers.append(("transfer-encoding", "chunked"))
        case .some(0) where !head.method.mayHaveBody: break
        case .some(let length): headers.append(("content-length", String(length)))
        }
        // One `HTTPHeaders` from the whole list: `add` would check every name again.
        return HTTPRequestHead(version: .http1_1, method: head.method, uri: target, headers: HTTPHeaders(headers))
    }
}

/// Lower-case header names and what they stand for, looked up by length first, then bytes
/// ignoring ASCII case: a name of a length no entry has costs one comparison.
struct NameTable<Value> {
    private let byLength: [[(name: [UInt8], value: Value)]]

    init(_ entries: [(String, Value)]) {
        var byLength = Array(repeating: [(name: [UInt8], value: Value)](), count: (entries.map { $0.0.utf8.count }.max() ?? 0) + 1)
        for (name, value) in entries { byLength[name.utf8.count].append((Array(name.utf8), value)) }
        self.byLength = byLength
    }

    subscript(_ name: String) -> Value? {
        var name = name
        return name.withUTF8 { self[bytes: UnsafeRawBufferPointer($0)] }
    }

    subscript(bytes name: UnsafeRawBufferPointer) -> Value? {
        guard name.count < byLength.count else { return nil }
        for entry in byLength[name.count] where Self.equalIgnoringCase(name, entry.name, sameLength: true) { return entry.value }
        return nil
    }

    /// True when `bytes` equal `lowercased` ignoring ASCII case (`sameLength`: the caller knows
    /// both are as long).
    @inline(__always)
    static func equalIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ lowercased: [UInt8], sameLength: Bool) -> Bool {
        guard sameLength || bytes.count == lowercased.count else { return false }
        var index = 0
        for expected in lowercased {
            let byte = bytes[index]
            if (byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte) != expected { return false }
            index += 1
        }
        return true
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

extension NameTable: Sendable where Value: Sendable {}
