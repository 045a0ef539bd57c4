import NIOCore
import NIOHTTP1

@testable import GatewayApp

extension RequestHead {
    /// The header lines, as NIO's `HTTPHeaders`.
    var headers: HTTPHeaders { httpHead.headers }

    /// A head as `RequestParser` would give it for these lines, built without the parser's framing
    /// checks, so a test can hand the request writer lines the parser refuses (`Content-Length`
    /// beside `Transfer-Encoding`) and see them dropped.
    static func lines(_ method: HTTPMethod, _ uri: String, _ headers: [(String, String)]) -> RequestHead {
        var bytes = ByteBuffer(string: "\(method.rawValue) \(uri) HTTP/1.1\r\n")
        var fields: [Field] = []
        for (name, value) in headers {
            let nameStart = bytes.writerIndex
            bytes.writeString(name)
            let nameEnd = bytes.writerIndex
            bytes.writeString(": ")
            let valueStart = bytes.writerIndex
            bytes.writeString(value)
            fields.append(Field(name: nameStart..<nameEnd, value: valueStart..<bytes.writerIndex))
            bytes.writeString("\r\n")
        }
        bytes.writeString("\r\n")
        let facts = RequestHeadFacts()
        bytes.withUnsafeReadableBytes { raw in
            for field in fields {
                facts.note(name: UnsafeRawBufferPointer(rebasing: raw[field.name]), value: UnsafeRawBufferPointer(rebasing: raw[field.value]))
            }
        }
        return RequestHead(method: method, uri: uri, version: .http1_1, bytes: bytes, fields: fields, facts: facts)
    }
}
