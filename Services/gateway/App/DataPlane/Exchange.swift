import NIOCore
import NIOHTTP1

/// One request's journey through `ProxyHandler`.
final class Exchange {
    enum Phase {
        case admitting
        case forwarding
        case answered
    }

    let head: RequestHead
    let requestID: String
    let start = NIODeadline.now()
    var keepAlive: Bool
    var phase = Phase.forwarding
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

    var responseStarted = false
    var responseEnded = false

    /// The request target's query (after `?`), split off once when the request began.
    var query: String?
    /// A WebSocket upgrade (`WebSocketHandshake.isUpgrade`).
    var webSocket = false
    /// The `Authorization` made from a `?token=` query parameter, which is not forwarded as such.
    var queryAuthorization: String?
    /// The headers of the upstream's 101, waiting for its end to switch both connections to a tunnel.
    var switching: HTTPHeaders?

    let facts: RequestHeadFacts

    init(head: RequestHead, requestID: String, bufferBytes: Int) {
        self.head = head
        self.facts = head.facts
        self.requestID = requestID
        self.keepAlive = head.isKeepAlive
        self.declaredLength = head.facts.declaredLength
        self.bufferWhole = (declaredLength ?? .max) <= bufferBytes
    }

    func cancelTimers() {
        bodyTimer?.cancel()
        bodyTimer = nil
    }
}
