import NIOCore
import NIOHTTP1

/// Reads HTTP/1 requests (RFC 9112) from a client connection's bytes, in place of NIO's
/// `HTTPRequestDecoder`: each head is checked and scanned once, in place; body parts are slices of
/// the buffers they came in. Its refusals are NIO's `HTTPParserError`s, which `ProxyHandler` turns
/// into 400 (431 for `.headerOverflow`) and never forwards.
///
/// Strict, as a gateway in front of other servers must be (request smuggling lives in the gaps
/// between two readers): CRLF line ends only; no obsolete line folding; no whitespace before a
/// colon; no control characters in names, values or the target; one `Content-Length` of digits
/// only; no `Content-Length` beside `Transfer-Encoding`; `chunked` last in `Transfer-Encoding`.
/// After a request that asks to switch protocols (`Upgrade`, or CONNECT) nothing more is read as
/// HTTP: what follows waits for a tunnel, or the connection closes after the answer.
///
/// A plain value type, driven by `ProxyHandler` from the connection's bytes; each `next` call
/// stands alone.
struct RequestParser {
    private enum State {
        case head
        case fixed(remaining: Int)
        case chunked(ChunkedBody)
        /// After a request switching protocols, or a refusal: nothing more is HTTP.
        case stopped
    }

    /// Largest request line, and largest header section (431 beyond either).
    let maxHeaderBytes: Int
    private var state = State.head
    /// Bytes of a head or chunk line that has not all come yet.
    private var held = HeldBytes()
    /// The request in progress switches protocols: stop at its end.
    private var stopAtEnd = false

    init(maxHeaderBytes: Int) {
        self.maxHeaderBytes = maxHeaderBytes
    }

    var isStopped: Bool {
        if case .stopped = state { return true }
        return false
    }

    /// A request has begun and not ended (its head in part, or its body).
    var isMidRequest: Bool {
        switch state {
        case .head: !held.isEmpty
        case .fixed, .chunked: true
        case .stopped: false
        }
    }

    /// The next request part from `input` (consuming what it used), or nil when `input` holds no
    /// more of one: the rest is then held until more bytes come. Once stopped, `input` is left
    /// as it is.
    mutating func next(_ input: inout ByteBuffer) throws(HTTPParserError) -> RequestPart? {
        held.prepend(to: &input)
        switch state {
        case .stopped:
            return nil
        case .head:
            guard let head = try readHead(&input) else {
                try hold(&input, limit: 2 * maxHeaderBytes + 4, or: .headerOverflow)
                return nil
            }
            return .head(head)
        case .fixed(let remaining):
            if remaining == 0 {
                state = stopAtEnd ? .stopped : .head
                return .end
            }
            guard let part = HTTPWire.slice(upTo: remaining, of: &input) else { return nil }
            state = .fixed(remaining: remaining - part.readableBytes)
            return .body(part)
        case .chunked(var body):
            let step: ChunkedBody.Step?
            do {
                step = try body.next(&input)
            } catch {
                state = .stopped
                throw error.tooLarge ? .headerOverflow : .invalidChunkSize
            }
            state = .chunked(body)
            switch step {
            case .data(let data):
                return .body(data)
            case .end:
                state = stopAtEnd ? .stopped : .head
                return .end
            case nil:
                try hold(&input, limit: body.heldLimit, or: .invalidChunkSize)
                return nil
            }
        }
    }

    /// Keeps the rest of `input` for the next call, unless it is already more than `limit`.
    private mutating func hold(_ input: inout ByteBuffer, limit: Int, or error: HTTPParserError) throws(HTTPParserError) {
        guard held.keep(&input, limit: limit) else {
            state = .stopped
            throw error
        }
    }

    /// A whole head from `input` (consumed, its blank line included), or nil when it has not all
    /// come (nothing consumed). Sets what the body that follows is.
    private mutating func readHead(_ input: inout ByteBuffer) throws(HTTPParserError) -> RequestHead? {
        // Empty lines before a request line are ignored (RFC 9112 §2.2), as after a body some
        // clients send one.
        while input.readableBytes >= 2, input.getInteger(at: input.readerIndex, as: UInt16.self) == 0x0D0A {
            input.moveReaderIndex(forwardBy: 2)
        }
        // Nothing yet (the usual case right after a request ended), or only the start of an empty line.
        if input.readableBytes == 0 { return nil }
        if input.readableBytes == 1, input.getInteger(at: input.readerIndex, as: UInt8.self) == UInt8(ascii: "\r") { return nil }
        do {
            guard try held.headMayBeWhole(input) else { return nil }
        } catch {
            state = .stopped
            throw .lfExpected
        }
        let scanned: ScannedRequest?
        do {
            scanned = try input.withUnsafeReadableBytes { bytes in try Self.scan(bytes, maxHeaderBytes: maxHeaderBytes) }
        } catch {
            state = .stopped
            throw error as? HTTPParserError ?? .unknown
        }
        guard let scanned else {
            held.headIsShort(input)
            return nil
        }
        held.headWasRead()
        let bytes = input.readSlice(length: scanned.length)!
        stopAtEnd = scanned.switchesProtocols
        if scanned.chunked {
            state = .chunked(ChunkedBody(maxTrailerBytes: maxHeaderBytes))
            scanned.facts.declaredLength = nil
        } else {
            state = .fixed(remaining: scanned.contentLength ?? 0)
            scanned.facts.declaredLength = scanned.contentLength ?? 0
        }
        return RequestHead(method: scanned.method, uri: scanned.uri, version: scanned.version, bytes: bytes, fields: scanned.fields, facts: scanned.facts)
    }

    /// What one pass over a request head finds.
    private struct ScannedRequest {
        var method = HTTPMethod.GET
        var uri = ""
        var version = HTTPVersion.http1_1
        var fields: [RequestHead.Field] = []
        let facts = RequestHeadFacts()
        var length = 0
        var contentLength: Int?
        var chunked = false
        var switchesProtocols = false
    }

    /// Checks and scans a head, each byte looked at once; nil when it stops short of its blank line.
    private static func scan(_ bytes: UnsafeRawBufferPointer, maxHeaderBytes: Int) throws -> ScannedRequest? {
        var request = ScannedRequest()
        request.fields.reserveCapacity(12)
        let count = bytes.count
        // Request line: method SP request-target SP HTTP/1.x CRLF.
        var index = 0
        while index < count, HTTPWire.isTokenByte(bytes[index]) { index += 1 }
        guard index < count else { return try short(count, maxHeaderBytes) }
        guard index > 0, bytes[index] == UInt8(ascii: " ") else { throw HTTPParserError.invalidMethod }
        request.method = method(UnsafeRawBufferPointer(rebasing: bytes[0..<index]))
        let targetStart = index + 1
        index = targetStart
        // The target: visible ASCII only (anything else must be percent-encoded).
        while index < count, bytes[index] > 0x20, bytes[index] < 0x7F { index += 1 }
        guard index < count else { return try short(count, maxHeaderBytes) }
        guard index > targetStart, bytes[index] == UInt8(ascii: " ") else { throw HTTPParserError.invalidURL }
        request.uri = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[targetStart..<index]), as: UTF8.self)
        index += 1
        // HTTP/1.0 or HTTP/1.1, refused as soon as a byte differs (not only once 8 have come).
        for offset in 0..<min(7, count - index) where bytes[index + offset] != httpSlashOne.utf8Start[offset] {
            throw HTTPParserError.invalidVersion
        }
        guard index + 10 <= count else { return nil }
        guard bytes[index + 7] == UInt8(ascii: "0") || bytes[index + 7] == UInt8(ascii: "1") else { throw HTTPParserError.invalidVersion }
        request.version = HTTPVersion(major: 1, minor: Int(bytes[index + 7] - UInt8(ascii: "0")))
        guard bytes[index + 8] == UInt8(ascii: "\r"), bytes[index + 9] == UInt8(ascii: "\n") else { throw HTTPParserError.lfExpected }
        guard index + 10 <= maxHeaderBytes else { throw HTTPParserError.headerOverflow }
        // Header lines, up to the blank line.
        var start = index + 10
        let fieldsStart = start
        var transferCodings = 0
        while true {
            guard start - fieldsStart <= maxHeaderBytes else { throw HTTPParserError.headerOverflow }
            guard start + 1 < count else { return nil }
            if bytes[start] == UInt8(ascii: "\r") {
                guard bytes[start + 1] == UInt8(ascii: "\n") else { throw HTTPParserError.lfExpected }
                break
            }
            // A name of token characters right up to the colon (which also refuses a folded line).
            var colon = start
            while colon < count, HTTPWire.isTokenByte(bytes[colon]) { colon += 1 }
            guard colon < count else { return nil }
            guard colon > start, bytes[colon] == UInt8(ascii: ":") else { throw HTTPParserError.invalidHeaderToken }
            let end = HTTPWire.fieldValueEnd(bytes, from: colon + 1)
            guard end < count else { return nil }
            guard bytes[end] == UInt8(ascii: "\r") else { throw bytes[end] == UInt8(ascii: "\n") ? HTTPParserError.lfExpected : .invalidHeaderToken }
            guard end + 1 < count else { return nil }
            guard bytes[end + 1] == UInt8(ascii: "\n") else { throw HTTPParserError.lfExpected }
            let name = UnsafeRawBufferPointer(rebasing: bytes[start..<colon])
            let valueRange = HTTPWire.trimmed(bytes, from: colon + 1, to: end)
            let value = UnsafeRawBufferPointer(rebasing: bytes[valueRange])
            switch name.count {
            case 14 where NameTable<Bool>.equalIgnoringCase(name, contentLength, sameLength: true):
                guard request.contentLength == nil else { throw HTTPParserError.unexpectedContentLength }
                guard let length = HTTPWire.contentLength(value) else { throw HTTPParserError.invalidContentLength }
                request.contentLength = length
            case 17 where NameTable<Bool>.equalIgnoringCase(name, transferEncoding, sameLength: true):
                transferCodings += try codings(value, chunkedSoFar: &request.chunked)
            default:
                request.facts.note(name: name, value: value)
            }
            request.fields.append(RequestHead.Field(name: start..<colon, value: valueRange))
            start = end + 2
        }
        // `chunked` must be the last coding; a body both chunked and with a length is refused.
        if transferCodings > 0 && !request.chunked { throw HTTPParserError.invalidHeaderToken }
        if request.chunked && request.contentLength != nil { throw HTTPParserError.unexpectedContentLength }
        request.switchesProtocols = request.facts.upgrade || request.method == .CONNECT
        request.length = start + 2
        return request
    }

    private static let httpSlashOne: StaticString = "HTTP/1."
    private static let contentLength = Array("content-length".utf8)
    private static let transferEncoding = Array("transfer-encoding".utf8)

    /// A head that stops short: wait for more, unless it is already past the limit.
    private static func short(_ count: Int, _ maxHeaderBytes: Int) throws -> ScannedRequest? {
        if count > maxHeaderBytes { throw HTTPParserError.headerOverflow }
        return nil
    }

    /// The codings of a `Transfer-Encoding` value (how many), and whether the last so far is
    /// `chunked`; `chunked` anywhere but last is refused.
    private static func codings(_ value: UnsafeRawBufferPointer, chunkedSoFar chunked: inout Bool) throws -> Int {
        var count = 0
        try HTTPWire.forEachListElement(value) { coding in
            if chunked { throw HTTPParserError.invalidHeaderToken }
            chunked = NameTable<Bool>.equalIgnoringCase(coding, HTTPWire.chunkedCoding, sameLength: false)
            count += 1
        }
        return count
    }

    /// The method its bytes name; the common ones without making a `String`.
    private static func method(_ bytes: UnsafeRawBufferPointer) -> HTTPMethod {
        switch bytes.count {
        case 3 where bytes[0] == UInt8(ascii: "G") && bytes[1] == UInt8(ascii: "E") && bytes[2] == UInt8(ascii: "T"): .GET
        case 3 where bytes[0] == UInt8(ascii: "P") && bytes[1] == UInt8(ascii: "U") && bytes[2] == UInt8(ascii: "T"): .PUT
        case 4 where bytes[0] == UInt8(ascii: "P") && bytes[1] == UInt8(ascii: "O") && bytes[2] == UInt8(ascii: "S") && bytes[3] == UInt8(ascii: "T"): .POST
        case 4 where bytes[0] == UInt8(ascii: "H") && bytes[1] == UInt8(ascii: "E") && bytes[2] == UInt8(ascii: "A") && bytes[3] == UInt8(ascii: "D"): .HEAD
        default: HTTPMethod(rawValue: String(decoding: bytes, as: UTF8.self))
        }
    }
}
