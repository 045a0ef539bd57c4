import NIOCore
import NIOHTTP1

/// A client's request head as the gateway reads it (`RequestParser`): method, target and version,
/// and each header line as ranges of the bytes it came in. No `String` is made per header line: the
/// request an upstream is sent copies the lines it keeps straight from those bytes
/// (`ForwardedHeaders.writeRequest`), and the few values the gateway acts on were read in the same
/// scan (`facts`). NIO's `HTTPRequestHead`, which holds a `String` for every name and value, is made
/// only where a rare path wants one (`httpHead`: a WebSocket handshake).
final class RequestHead {
    /// One header line: its name and its value (without the spaces around it), as offsets into `bytes`.
    struct Field {
        let name: Range<Int>
        let value: Range<Int>
    }

    let method: HTTPMethod
    let uri: String
    let version: HTTPVersion
    /// The head as it came, from the request line to the blank line.
    let bytes: ByteBuffer
    let fields: [Field]
    let facts: RequestHeadFacts

    init(method: HTTPMethod, uri: String, version: HTTPVersion, bytes: ByteBuffer, fields: [Field], facts: RequestHeadFacts) {
        self.method = method
        self.uri = uri
        self.version = version
        self.bytes = bytes
        self.fields = fields
        self.facts = facts
    }

    /// The head of a request that never came whole, for the answer that refuses it.
    static func refused() -> RequestHead {
        RequestHead(method: .GET, uri: "/", version: .http1_1, bytes: ByteBuffer(), fields: [], facts: RequestHeadFacts())
    }

    /// Whether the connection stays open after this request (RFC 9112 §9.3), as
    /// `HTTPRequestHead.isKeepAlive` says.
    var isKeepAlive: Bool {
        version.minor >= 1 && version.major == 1 ? !facts.connectionClose : facts.connectionKeepAlive
    }

    /// Calls `body` with the bytes of every value of the header `name` (lower case), in order.
    func forEachValue(_ name: StaticString, _ body: (UnsafeRawBufferPointer) -> Void) {
        bytes.withUnsafeReadableBytes { bytes in
            for field in fields where ForwardedHeaders.matches(UnsafeRawBufferPointer(rebasing: bytes[field.name]), name) {
                body(UnsafeRawBufferPointer(rebasing: bytes[field.value]))
            }
        }
    }

    /// Every value of the header `name` (lower case), in order.
    func values(_ name: StaticString) -> [String] {
        var values: [String] = []
        forEachValue(name) { values.append(String(decoding: $0, as: UTF8.self)) }
        return values
    }

    /// The first value of the header `name` (lower case).
    func first(_ name: StaticString) -> String? {
        values(name).first
    }

    /// NIO's head of this request: a `String` per name and value, for the rare paths that want one.
    var httpHead: HTTPRequestHead {
        let headers = bytes.withUnsafeReadableBytes { bytes in
            fields.map { field in
                (
                    String(decoding: UnsafeRawBufferPointer(rebasing: bytes[field.name]), as: UTF8.self),
                    String(decoding: UnsafeRawBufferPointer(rebasing: bytes[field.value]), as: UTF8.self)
                )
            }
        }
        return HTTPRequestHead(version: version, method: method, uri: uri, headers: HTTPHeaders(headers))
    }
}

/// A part of a client's request, as `RequestParser` reads it.
enum RequestPart {
    case head(RequestHead)
    case body(ByteBuffer)
    case end
}
