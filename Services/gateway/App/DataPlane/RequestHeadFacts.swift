/// The request headers the data plane acts on, noted while `RequestParser` scans the head (each
/// line looked at once, by its bytes): a `String` is made only for a value the gateway uses. A
/// class, made once per request and shared by the head and the exchange.
final class RequestHeadFacts {
    private(set) var requestID: String?
    private(set) var origin: String?
    private(set) var authorization: String?
    private(set) var apiKey: String?
    private(set) var sessionID: String?
    private(set) var expect: String?
    private(set) var upgrade = false
    /// The request carries an `Idempotency-Key`: the service makes sending it twice safe.
    private(set) var idempotencyKey = false
    /// `Connection: close` / `Connection: keep-alive` (`RequestHead.isKeepAlive`).
    private(set) var connectionClose = false
    private(set) var connectionKeepAlive = false
    /// `Connection` names a header besides `close` and `keep-alive`: that header is hop-by-hop too
    /// (RFC 9110 §7.6.1). Rare, so the names are only read when this is set.
    private(set) var connectionNamesHeaders = false
    /// The body's length: its `Content-Length`, 0 without one, nil for a chunked body (set by the
    /// parser, which checks the framing headers).
    var declaredLength: Int? = 0

    init() {}

    /// Notes one header line of the head being scanned, given as its bytes (value trimmed).
    func note(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        switch name.count {
        case 6 where ForwardedHeaders.matches(name, "origin"): if origin == nil { origin = Self.string(value) }
        case 6 where ForwardedHeaders.matches(name, "expect"): expect = Self.string(value)
        case 7 where ForwardedHeaders.matches(name, "upgrade"): upgrade = true
        case 9 where ForwardedHeaders.matches(name, "x-api-key"): if apiKey == nil { apiKey = Self.string(value) }
        case 10 where ForwardedHeaders.matches(name, "connection"): noteConnection(value)
        case 12 where ForwardedHeaders.matches(name, "x-request-id"): if requestID == nil { requestID = Self.string(value) }
        case 12 where ForwardedHeaders.matches(name, "x-session-id"): if sessionID == nil { sessionID = Self.string(value) }
        case 13 where ForwardedHeaders.matches(name, "authorization"): if authorization == nil { authorization = Self.string(value) }
        case 15 where ForwardedHeaders.matches(name, "idempotency-key"): idempotencyKey = true
        default: break
        }
    }

    private func noteConnection(_ value: UnsafeRawBufferPointer) {
        HTTPWire.forEachListElement(value) { option in
            if ForwardedHeaders.matches(option, "close") {
                connectionClose = true
            } else if ForwardedHeaders.matches(option, "keep-alive") {
                connectionKeepAlive = true
            } else {
                connectionNamesHeaders = true
            }
        }
    }

    private static func string(_ bytes: UnsafeRawBufferPointer) -> String {
        String(decoding: bytes, as: UTF8.self)
    }
}
