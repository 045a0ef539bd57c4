import NIOHTTP1

/// The request headers the data plane acts on, found in one pass over the head: every request
/// needs several of them, and a lookup by name each would scan the headers a dozen times.
struct RequestHeadFacts {
    var requestID: String?
    var origin: String?
    var authorization: String?
    var apiKey: String?
    var sessionID: String?
    var contentLength: String?
    var transferEncoding: String?
    var expect: String?
    var upgrade = false

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
            case 17 where ForwardedHeaders.matches(name, "transfer-encoding"): transferEncoding = value
            default: break
            }
        }
    }
}
