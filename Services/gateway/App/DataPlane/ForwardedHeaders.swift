import NIOCore
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
    static func matches(_ name: String, _ lowercased: StaticString) -> Bool {
        var name = name
        return name.withUTF8 { bytes in
            NameTable<Bool>.equalIgnoringCase(
                UnsafeRawBufferPointer(bytes), UnsafeRawBufferPointer(start: lowercased.utf8Start, count: lowercased.utf8CodeUnitCount),
                sameLength: false
            )
        }
    }

    /// True when `bytes` equal `lowercased` ignoring ASCII case.
    @inline(__always)
    static func matches(_ bytes: UnsafeRawBufferPointer, _ lowercased: StaticString) -> Bool {
        NameTable<Bool>.equalIgnoringCase(
            bytes, UnsafeRawBufferPointer(start: lowercased.utf8Start, count: lowercased.utf8CodeUnitCount), sameLength: false
        )
    }

    static func kindOnRequest(_ name: UnsafeRawBufferPointer) -> Kind {
        if let kind = requestKinds[bytes: name] { return kind }
        if name.count > 12, name[0] | 0x20 == UInt8(ascii: "x"), matches(UnsafeRawBufferPointer(rebasing: name[0..<12]), "x-forwarded-") {
            return .forwardedOther
        }
        return .relayed
    }

    /// Header names the `Connection` headers list beyond `keep-alive` and `close`, lower-cased:
    /// those are hop-by-hop too (RFC 9110 §7.6.1). Usually none, and then nothing is read.
    static func connectionTokens(_ head: RequestHead) -> [[UInt8]] {
        guard head.facts.connectionNamesHeaders else { return [] }
        var tokens: [[UInt8]] = []
        head.forEachValue("connection") { value in
            HTTPWire.forEachListElement(value) { token in
                guard !matches(token, "keep-alive"), !matches(token, "close") else { return }
                tokens.append(token.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 })
            }
        }
        return tokens
    }

    /// What makes a forwarded request a WebSocket upgrade, which hop-by-hop rules would drop:
    /// `Connection: Upgrade`, `Upgrade: websocket`, and the `Authorization` a `?token=` stands for.
    struct Upgrade {
        var authorization: String?
    }

    /// Writes the request head the upstream is sent, as bytes, in one go: the request line, the
    /// client's headers less hop-by-hop ones, those the gateway sets and `X-Forwarded-*` claims of
    /// anyone but a trusted proxy, then the gateway's own lines (`host`, `x-request-id`,
    /// `x-forwarded-*`, framing). `bodyLength` is the exact length of a body read whole, nil for a
    /// relayed (chunked) one, 0 for none. An API key never goes further than the gateway: with
    /// `hasAPIKeyHeader`, `X-API-Key` is dropped, and `authorization` says what becomes of
    /// `Authorization`. Neither costs a request without a key anything per header. Returns how the
    /// body that follows is framed. The buffer is allocated once, as large as the head can be.
    static func writeRequest(
        _ head: RequestHead, target: String, upstream: UpstreamAddress, requestID: String, peer: String,
        peerIsTrusted: Bool, bodyLength: Int?, authorization: Admission.UpstreamAuthorization = .asSent, hasAPIKeyHeader: Bool = false,
        upgrade: Upgrade? = nil, allocator: ByteBufferAllocator
    ) -> (bytes: ByteBuffer, framing: HeadEncoding.Framing) {
        let replacesAuthorization = authorization != .asSent
        let connectionTokens = connectionTokens(head)
        let framing: HeadEncoding.Framing
        var length = 0
        switch bodyLength {
        case _ where head.method == .TRACE: framing = .neither
        case .none: framing = .chunked
        case .some(0) where !head.method.mayHaveBody: framing = .neither
        case .some(let bodyLength):
            framing = .contentLength
            length = bodyLength
        }
        // At most this much: every client line kept, twice over for `x-forwarded-for` and
        // `x-forwarded-host` (which repeat client values), and the gateway's own lines.
        var capacity = head.method.rawValue.utf8.count + target.utf8.count + 16 + upstream.authority.utf8.count + requestID.utf8.count
            + peer.utf8.count + 256
        capacity += 2 * head.bytes.readableBytes
        if case .replaced(let value) = authorization { capacity += value.utf8.count + 20 }
        if let authorization = upgrade?.authorization { capacity += authorization.utf8.count + 20 }
        var buffer = allocator.buffer(capacity: capacity)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: capacity) { raw in
            var out = raw.baseAddress!
            HeadEncoding.StartLine.request(head.method, uri: target, version: .http1_1).copy(to: &out)
            HeadEncoding.copy(HeadEncoding.crlf, to: &out)
            var forwardedFor: String?
            var hasProto = false
            // The client's lines, copied from the bytes they came in, less those the gateway drops.
            let host: Range<Int>? = head.bytes.withUnsafeReadableBytes { bytes in
                var host: Range<Int>?
                for field in head.fields {
                    let name = UnsafeRawBufferPointer(rebasing: bytes[field.name])
                    let value = UnsafeRawBufferPointer(rebasing: bytes[field.value])
                    switch kindOnRequest(name) {
                    case .dropped:
                        if host == nil, name.count == 4, matches(name, "host") { host = field.value }
                        continue
                    case .forwardedFor:
                        // From anyone but a trusted proxy, these are the client's own claims: replaced, not passed on.
                        if peerIsTrusted {
                            let value = String(decoding: value, as: UTF8.self)
                            forwardedFor = forwardedFor.map { "\($0), \(value)" } ?? value
                        }
                        continue
                    case .forwardedOther:
                        guard peerIsTrusted, !matches(name, "x-forwarded-host") else { continue }
                        if matches(name, "x-forwarded-proto") { hasProto = true }
                    case .relayed:
                        break
                    }
                    if !connectionTokens.isEmpty && connectionTokens.contains(where: { NameTable<Bool>.equalIgnoringCase(name, $0, sameLength: false) }) {
                        continue
                    }
                    if replacesAuthorization && matches(name, "authorization") { continue }
                    if hasAPIKeyHeader && matches(name, "x-api-key") { continue }
                    HeadEncoding.copyLine(name, value, to: &out)
                }
                return host
            }
            if case .replaced(let value) = authorization { HeadEncoding.copyLine("authorization", value, to: &out) }
            if let upgrade {
                HeadEncoding.copyLine("connection", "Upgrade", to: &out)
                HeadEncoding.copyLine("upgrade", "websocket", to: &out)
                if authorization == .asSent, let value = upgrade.authorization { HeadEncoding.copyLine("authorization", value, to: &out) }
            }
            HeadEncoding.copyLine("host", upstream.authority, to: &out)
            HeadEncoding.copyLine("x-request-id", requestID, to: &out)
            if let forwardedFor {
                HeadEncoding.copy("x-forwarded-for: " as StaticString, to: &out)
                HeadEncoding.copy(forwardedFor, to: &out)
                HeadEncoding.copy(", " as StaticString, to: &out)
                HeadEncoding.copy(peer, to: &out)
                HeadEncoding.copy(HeadEncoding.crlf, to: &out)
            } else {
                HeadEncoding.copyLine("x-forwarded-for", peer, to: &out)
            }
            if !hasProto { HeadEncoding.copy("x-forwarded-proto: http\r\n" as StaticString, to: &out) }
            if let host {
                head.bytes.withUnsafeReadableBytes { bytes in
                    HeadEncoding.copyLine("x-forwarded-host", UnsafeRawBufferPointer(rebasing: bytes[host]), to: &out)
                }
            }
            if framing == .chunked { HeadEncoding.copy(HeadEncoding.chunkedLine, to: &out) }
            if framing == .contentLength {
                HeadEncoding.copy("content-length: " as StaticString, to: &out)
                HeadEncoding.copyDecimal(length, to: &out)
                HeadEncoding.copy(HeadEncoding.crlf, to: &out)
            }
            HeadEncoding.copy(HeadEncoding.crlf, to: &out)
            return out - raw.baseAddress!
        }
        return (buffer, framing)
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
        lowercased.withUnsafeBytes { equalIgnoringCase(bytes, $0, sameLength: sameLength) }
    }

    @inline(__always)
    static func equalIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ lowercased: UnsafeRawBufferPointer, sameLength: Bool) -> Bool {
        guard sameLength || bytes.count == lowercased.count else { return false }
        for index in 0..<lowercased.count {
            let byte = bytes[index]
            if (byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte) != lowercased[index] { return false }
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
