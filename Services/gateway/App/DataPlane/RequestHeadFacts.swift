import NIOHTTP1

/// The request headers the data plane acts on, found in one pass over the head: every request
/// needs several of them, and a lookup by name each would scan the headers a dozen times. A class,
/// made once per request: as a struct of nine strings it was copied whole on its way into the
/// exchange and back out.
final class RequestHeadFacts {
    private(set) var requestID: String?
    private(set) var origin: String?
    private(set) var authorization: String?
    private(set) var apiKey: String?
    private(set) var sessionID: String?
    private(set) var contentLength: String?
    private(set) var transferEncoding: String?
    private(set) var expect: String?
    private(set) var upgrade = false
    /// The request carries an `Idempotency-Key`: the service makes sending it twice safe.
    private(set) var idempotencyKey = false

    init(_ headers: HTTPHeaders) {
        for (name, value) in headers {
            switch name.utf8.count {
            case 6 where ForwardedHeaders.matches(name, "origin"): origin = origin ?? value
            case 6 where ForwardedHeaders.matches(name, "expect"): expect = value
            case 7 where ForwardedHeaders.matches(name, "upgrade"): upgrade = true
            case 9 where ForwardedHeaders.matches(name, "x-api-key"): apiKey = apiKey ?? value
            case 12 where ForwardedHeaders.matches(name, "x-request-id"): requestID = requestID ?? value
            case 12 where ForwardedHeaders.matches(name, "x-session-id"): sessionID = sessionID ?? value
            case 13 where ForwardedHeaders.matches(name, "authorization"): authorization = authorization ?? value
            case 14 where ForwardedHeaders.matches(name, "content-length"): contentLength = value
            case 15 where ForwardedHeaders.matches(name, "idempotency-key"): idempotencyKey = true
            case 17 where ForwardedHeaders.matches(name, "transfer-encoding"): transferEncoding = value
            default: break
            }
        }
    }
}
