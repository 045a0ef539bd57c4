import NIOCore
import NIOHTTP1

/// The gateway's own answer to a WebSocket upgrade it does not admit: it completes the handshake and
/// at once sends a Close frame (1008 by default), because a browser cannot read the status of a
/// failed handshake but does report a close code and reason.
///
/// Write it through the client's HTTP pipeline as it is, encoder in place: `parts`, in order, then
/// close once flushed. The answer encoder (`GatewayResponseEncoder`, as NIO's) frames a 101 as
/// bodyless (no `Content-Length`, no chunking), so the `.body` part goes out verbatim right after
/// the head. `bytes` is the same on the wire, for a connection whose HTTP handlers are already gone.
struct WebSocketRejection {
    let responseHead: HTTPResponseHead
    let closeFrame: ByteBuffer

    /// Nil unless `request` is a WebSocket upgrade (without a key there is no handshake to complete;
    /// answer such a request with a plain HTTP error instead).
    init?(request: HTTPRequestHead, code: UInt16 = WebSocketHandshake.policyViolation, reason: String) {
        guard WebSocketHandshake.isUpgrade(request), let key = request.headers.first(name: "sec-websocket-key") else { return nil }
        let headers = HTTPHeaders([
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", WebSocketHandshake.acceptValue(forKey: key)),
        ])
        self.responseHead = HTTPResponseHead(version: .http1_1, status: .switchingProtocols, headers: headers)
        self.closeFrame = WebSocketHandshake.closeFrame(code: code, reason: reason)
    }

    /// What to write through NIO's HTTP server pipeline, in order.
    var parts: [HTTPServerResponsePart] {
        [.head(responseHead), .body(.byteBuffer(closeFrame)), .end(nil)]
    }

    /// The 101 and the Close frame as raw bytes.
    func bytes(allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: 160 + closeFrame.readableBytes)
        buffer.writeString("HTTP/1.1 101 Switching Protocols\r\n")
        for (name, value) in responseHead.headers { buffer.writeString("\(name): \(value)\r\n") }
        buffer.writeString("\r\n")
        buffer.writeImmutableBuffer(closeFrame)
        return buffer
    }
}
