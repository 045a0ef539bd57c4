import NIOCore
import NIOHTTP1

/// The gateway's HTTP/1 encoder for answers to its clients, in place of NIO's
/// `HTTPResponseEncoder` and with its framing rules: a head that carries `Content-Length` keeps
/// it (and loses any `Transfer-Encoding`); an HTTP/1.1 answer without one is sent chunked
/// (`transfer-encoding: chunked` added); 1xx, 204 and 304 answers (and answers to CONNECT) lose
/// both; answers to HEAD keep their framing headers but send no body. The head goes out as one
/// buffer written in one go (`HeadEncoding`).
///
/// Every head it is given says which request method it answers, so it needs no view of the
/// requests going past (NIO's encoder learns that from its decoder).
///
/// Not a channel handler: `ProxyHandler` owns one per connection and calls it, writing bytes with
/// its own context. A part of a type of the gateway's own sent down the pipeline travels as a boxed
/// `NIOAny` and is cast back at the next handler, which cost more than encoding a head.
final class GatewayResponseEncoder {
    private var framing = HeadEncoding.Framing.neither
    /// The answer in progress is to HEAD or CONNECT: no body bytes go out.
    private var suppressBody = false
    /// A relayed head with a small declared body, held back with what has come of that body, so an
    /// answer whose head and body come in one read goes out as one buffer: one write through NIO's
    /// pending writes instead of two. Written at the answer's end, before any other part, or by
    /// `release` (the caller's flush), whichever comes first: never held across a flush.
    private var held: ByteBuffer?
    /// Largest declared body held back with its head.
    static let holdLimit = 16 * 1024

    /// Writes `part` as bytes through `context` (the caller's), to the handlers before it.
    func write(_ part: GatewayResponsePart, context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        if held != nil {
            if case .body(.byteBuffer(var bytes)) = part, promise == nil {
                held!.writeBuffer(&bytes)
                return
            }
            release(context: context)
        }
        switch part {
        case .head(let head, let method):
            writeHead(head, added: nil, to: method, context: context, promise: promise)
        case .answerHead(let head, let added, let method):
            writeHead(head, added: added, to: method, context: context, promise: promise)
        case .relayedHead(let relayed):
            writeRelayed(relayed, context: context, promise: promise)
        case .body(let part):
            if suppressBody {
                promise?.fail(NIOHTTPResponseEncoderError.responseBodyNotAllowed)
            } else {
                ChunkedFraming.write(part, chunked: framing == .chunked, context: context, promise: promise)
            }
        case .end(let trailers):
            suppressBody = false
            ChunkedFraming.end(trailers, chunked: framing == .chunked, context: context, promise: promise)
            framing = .neither
        }
    }

    private func writeHead(
        _ head: HTTPResponseHead, added: AddedLines?, to method: HTTPMethod, context: ChannelHandlerContext, promise: EventLoopPromise<Void>?
    ) {
        let code = head.status.code
        // A non-final 1xx is followed by the final answer to the same request.
        var toConnect = false
        if !((100..<200).contains(code) && code != 101) {
            suppressBody = method == .HEAD || method == .CONNECT
            toConnect = method == .CONNECT
        }
        let body: HeadEncoding.BodyExpectation = toConnect || !head.status.mayHaveResponseBody ? .no : .yes
        let plan = HeadEncoding.plan(head.headers, version: head.version, body: body)
        framing = suppressBody ? .neither : plan.framing
        var buffer = context.channel.allocator.buffer(capacity: 0)
        HeadEncoding.write(
            startLine: .status(head.status, version: head.version), headers: head.headers, added: added, plan: plan, into: &buffer
        )
        context.write(NIOAny(IOData.byteBuffer(buffer)), promise: promise)
    }

    /// An upstream's answer head, with the framing rules above: its `Content-Length` stays (a 204's
    /// or 304's is dropped), its `Transfer-Encoding` goes, an HTTP/1.1 answer without a length is
    /// sent chunked.
    private func writeRelayed(_ relayed: RelayedHead, context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        let head = relayed.head
        let bodyAllowed = head.code != 204 && head.code != 304
        suppressBody = relayed.method == .HEAD
        var addChunked = false
        if !bodyAllowed {
            framing = .neither
        } else if head.contentLength != nil {
            framing = .contentLength
        } else if relayed.version.minor >= 1 {
            framing = .chunked
            addChunked = true
        } else {
            framing = .neither
        }
        if suppressBody { framing = .neither }
        if framing == .contentLength, promise == nil, let length = head.contentLength, length <= Self.holdLimit {
            held = HeadEncoding.write(relayed, addChunked: false, reserving: length, allocator: context.channel.allocator)
            return
        }
        let buffer = HeadEncoding.write(relayed, addChunked: addChunked, allocator: context.channel.allocator)
        context.write(NIOAny(IOData.byteBuffer(buffer)), promise: promise)
    }

    /// Writes what is held back, if anything: call before flushing.
    func release(context: ChannelHandlerContext) {
        guard let buffer = held else { return }
        held = nil
        context.write(NIOAny(IOData.byteBuffer(buffer)), promise: nil)
    }
}

/// An upstream's answer head on its way to the client, with what the gateway adds to it.
struct RelayedHead {
    let head: UpstreamAnswerHead
    let added: AddedLines
    /// The client's HTTP version (the status line's).
    let version: HTTPVersion
    /// The method of the request answered.
    let method: HTTPMethod
    /// `Cache-Control: no-store` in place of the upstream's own `Cache-Control` (credential routes).
    let noStore: Bool
}

/// What `ProxyHandler` writes to its client: NIO's parts, and answer heads with the lines the
/// gateway adds to every answer (`AddedLines`), which the encoder writes straight as bytes. A
/// head says the method of the request it answers (HEAD and CONNECT answers carry no body).
enum GatewayResponsePart {
    case head(HTTPResponseHead, to: HTTPMethod)
    /// An answer's head: its own headers, then `AddedLines`.
    case answerHead(HTTPResponseHead, AddedLines, to: HTTPMethod)
    /// An upstream's answer head as it came, less what the gateway drops, plus what it adds.
    case relayedHead(RelayedHead)
    case body(IOData)
    case end(HTTPHeaders?)

    init(_ part: HTTPServerResponsePart, to method: HTTPMethod) {
        switch part {
        case .head(let head): self = .head(head, to: method)
        case .body(let body): self = .body(body)
        case .end(let trailers): self = .end(trailers)
        }
    }
}

/// What `UpstreamConnection` sends: a request head already written as bytes
/// (`ForwardedHeaders.writeRequest`) with how its body is framed, body parts, the end. The
/// connection frames them itself (`UpstreamConnection.send`): body parts become chunks when the
/// head said chunked.
enum UpstreamRequestPart {
    case head(ByteBuffer, HeadEncoding.Framing)
    case body(IOData)
    case end
}

/// Body parts and ends on the wire, as NIO's encoders write them.
enum ChunkedFraming {
    /// A part of a body: as it is, or as one chunk (`<hex size>\r\n` part `\r\n`). An empty part is
    /// never a chunk: that would end the body.
    static func write(_ part: IOData, chunked: Bool, context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        let size = part.readableBytes
        guard chunked, size > 0 else {
            context.write(NIOAny(part), promise: promise)
            return
        }
        var header = context.channel.allocator.buffer(capacity: 20)
        header.writeString(String(size, radix: 16))
        header.writeStaticString("\r\n")
        var trailer = header
        trailer.moveReaderIndex(forwardBy: header.readableBytes - 2)
        context.write(NIOAny(IOData.byteBuffer(header)), promise: nil)
        context.write(NIOAny(part), promise: nil)
        context.write(NIOAny(IOData.byteBuffer(trailer)), promise: promise)
    }

    /// The end of a body: the last chunk and any trailers when chunked, nothing otherwise (an
    /// empty write when a promise waits, so it completes in order).
    static func end(_ trailers: HTTPHeaders?, chunked: Bool, context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        if chunked {
            var buffer = context.channel.allocator.buffer(capacity: 8)
            buffer.writeStaticString("0\r\n")
            if let trailers {
                for (name, value) in trailers {
                    buffer.writeString(name)
                    buffer.writeStaticString(": ")
                    buffer.writeString(value)
                    buffer.writeStaticString("\r\n")
                }
            }
            buffer.writeStaticString("\r\n")
            context.write(NIOAny(IOData.byteBuffer(buffer)), promise: promise)
        } else if let promise {
            context.write(NIOAny(IOData.byteBuffer(context.channel.allocator.buffer(capacity: 0))), promise: promise)
        }
    }
}
