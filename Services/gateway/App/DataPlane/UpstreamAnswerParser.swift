import NIOCore
import NIOHTTP1

/// An upstream answer's head as it came off the wire. The reason phrase and the header lines stay
/// bytes (slices of the buffer they arrived in) and go to the client as they are, less what
/// `ForwardedHeaders` drops, instead of becoming `String`s in an `HTTPHeaders` and bytes again.
struct UpstreamAnswerHead {
    let version: HTTPVersion
    let code: Int
    /// The reason phrase as received (may be empty).
    let reason: ByteBuffer
    /// The header lines as received, each with its CRLF; the blank line ending the head excluded.
    let fields: ByteBuffer
    /// Lines (bits by index, the first 64) never relayed: hop-by-hop, set by the gateway, or a
    /// `Content-Length` of a 204 or 304.
    let droppedLines: UInt64
    /// `Cache-Control` lines (bits by index, the first 64): dropped on credential routes.
    let cacheControlLines: UInt64
    /// More than 64 lines: those after the 64th are looked up as they are copied.
    let lineCount: Int
    /// The connection may carry another request after this answer.
    let keepAlive: Bool
    let contentLength: Int?
    let chunked: Bool
    /// The security headers the answer sets itself (their values win over the gateway's).
    let security: SecurityHeaders.Set
    /// Header names a `Connection` header lists beyond `close`, `keep-alive` and `upgrade`,
    /// lower-cased: hop-by-hop too (RFC 9110 §7.6.1). Almost always empty.
    let connectionTokens: [String]

    /// Whether every line goes to the client as it is (one copy of `fields`), `noStore` meaning
    /// that `Cache-Control` lines are dropped.
    func relaysEveryLine(noStore: Bool) -> Bool {
        droppedLines == 0 && (!noStore || cacheControlLines == 0) && lineCount <= 64 && connectionTokens.isEmpty
    }

    /// Whether line `index`, named `name`, stays out of the relayed head.
    func dropsLine(_ index: Int, name: UnsafeRawBufferPointer, noStore: Bool) -> Bool {
        if index < 64 {
            let bit: UInt64 = 1 << UInt64(index)
            if droppedLines & bit != 0 || (noStore && cacheControlLines & bit != 0) { return true }
        } else {
            switch AnswerField.kind(name) {
            case .dropped, .connection, .transferEncoding: return true
            case .contentLength where code == 204 || code == 304: return true
            case .cacheControl where noStore: return true
            default: break
            }
        }
        return connectionTokens.contains { NameTable<Bool>.equalIgnoringCase(name, Array($0.utf8), sameLength: false) }
    }

    /// The header lines as `HTTPHeaders` (values without surrounding whitespace), for the rare
    /// answers that need more than relaying (a 101).
    var headers: HTTPHeaders {
        var headers = HTTPHeaders()
        fields.withUnsafeReadableBytes { bytes in
            AnswerLines.forEach(in: bytes) { line in
                let colon = AnswerLines.colon(bytes, in: line)
                let value = HTTPWire.trimmed(bytes, from: colon + 1, to: line.upperBound - 2)
                headers.add(
                    name: String(decoding: UnsafeRawBufferPointer(rebasing: bytes[line.lowerBound..<colon]), as: UTF8.self),
                    value: String(decoding: UnsafeRawBufferPointer(rebasing: bytes[value]), as: UTF8.self)
                )
            }
        }
        return headers
    }
}

/// What the gateway does with a header line of an upstream's answer.
enum AnswerField {
    enum Kind: Equatable {
        case relayed
        /// Hop-by-hop (RFC 9110 §7.6.1) or set by the gateway itself: never relayed.
        case dropped
        case connection
        case contentLength
        case transferEncoding
        /// Relayed, except on credential routes (where every answer is `no-store`).
        case cacheControl
        /// One of `SecurityHeaders.fields` (its index): relayed, and the gateway adds no other.
        case security(Int)
    }

    private static let table = NameTable(
        [("connection", Kind.connection), ("content-length", .contentLength), ("transfer-encoding", .transferEncoding), ("cache-control", .cacheControl)]
            + ForwardedHeaders.hopByHop.filter { $0 != "connection" && $0 != "transfer-encoding" }.map { ($0, Kind.dropped) }
            + ForwardedHeaders.replacedOnResponses.map { ($0, Kind.dropped) }
            + SecurityHeaders.fields.enumerated().map { ($0.element.0.lowercased(), Kind.security($0.offset)) }
    )

    static func kind(_ name: UnsafeRawBufferPointer) -> Kind {
        table[bytes: name] ?? .relayed
    }
}

/// Walking the header lines of a head the parser has checked: every line ends with CRLF and has
/// a colon right after its name.
enum AnswerLines {
    /// Calls `body` with each line's range (CRLF included).
    @inline(__always)
    static func forEach(in bytes: UnsafeRawBufferPointer, _ body: (_ line: Range<Int>) -> Void) {
        var start = 0
        while start < bytes.count {
            var end = start
            while bytes[end] != UInt8(ascii: "\n") { end += 1 }
            body(start..<(end + 1))
            start = end + 1
        }
    }

    /// The offset of a line's colon (the end of its name).
    @inline(__always)
    static func colon(_ bytes: UnsafeRawBufferPointer, in line: Range<Int>) -> Int {
        var colon = line.lowerBound
        while bytes[colon] != UInt8(ascii: ":") { colon += 1 }
        return colon
    }
}

/// Reads upstream answers (RFC 9112) from the bytes of one upstream connection, one answer per
/// request sent (`expect`), without NIO's `HTTPResponseDecoder`: the head is checked and scanned
/// in place, once; body bytes are handed on as slices of the buffers they came in, never copied.
///
/// Strict where an upstream has no excuse: CRLF line ends only, no obsolete line folding, no
/// whitespace before a colon, no control characters, one `Content-Length`, no `Content-Length`
/// beside `Transfer-Encoding`, and `chunked` as the only transfer coding. Anything else is an
/// error (the connection is closed, the client answered 503 or cut off).
///
/// A plain value type driven by `UpstreamConnection`; each `next` call stands alone, so whatever
/// the caller does with an event (even sending the next request) happens between calls.
struct UpstreamAnswerParser {
    enum Event {
        case head(UpstreamAnswerHead)
        case body(ByteBuffer)
        /// The answer ended; the connection may carry the next request (if `keepAlive`).
        case end
    }

    enum ParseError: Error, Equatable, CustomStringConvertible {
        case unexpectedBytes
        case malformedStatusLine
        case malformedHeader
        /// A line feed without a carriage return before it, or a carriage return alone.
        case badLineEnd
        case headTooLarge
        case badContentLength
        case badTransferEncoding
        case badChunk

        var description: String {
            switch self {
            case .unexpectedBytes: "bytes from the upstream when no answer was due"
            case .malformedStatusLine: "malformed status line"
            case .malformedHeader: "malformed header line"
            case .badLineEnd: "a line not ended by CRLF"
            case .headTooLarge: "answer head too large"
            case .badContentLength: "invalid or repeated Content-Length"
            case .badTransferEncoding: "unsupported Transfer-Encoding (or one beside Content-Length)"
            case .badChunk: "malformed chunked body"
            }
        }
    }

    private enum State {
        /// No request waiting for an answer.
        case idle
        case head
        case fixed(remaining: Int)
        case chunked(ChunkedBody)
        /// No length: the body ends when the upstream closes the connection.
        case untilClose
        /// A 101's end is due next.
        case switching
        /// After a 101: what follows is not HTTP.
        case switched
    }

    /// Largest answer head, and largest trailer section.
    static let maxHeadBytes = 64 * 1024

    private var state = State.idle
    /// The request waiting for this answer is a HEAD: the answer has no body, whatever it says.
    private var answersHead = false
    /// Bytes of a head, a chunk-size line or trailers that have not all arrived yet.
    private var held = HeldBytes()

    /// A request went out: its answer is due.
    mutating func expect(method: HTTPMethod) {
        state = .head
        answersHead = method == .HEAD
        held.clear()
    }

    /// True after a 101 has ended: the bytes that follow belong to the protocol switched to.
    var isSwitched: Bool {
        if case .switched = state { return true }
        return false
    }

    /// The connection closed: true when that ends the answer in progress well (one without a
    /// length, which ends with the connection).
    mutating func connectionClosed() -> Bool {
        defer { state = .idle }
        if case .untilClose = state { return true }
        return false
    }

    /// The next event from `input` (consuming what it used), or nil when `input` holds no more
    /// of one: the rest of `input` is then held until more bytes come. While idle or switched,
    /// `input` is left as it is (bytes while idle are the caller's error to raise).
    mutating func next(_ input: inout ByteBuffer) throws -> Event? {
        held.prepend(to: &input)
        while true {
            switch state {
            case .idle, .switched:
                return nil
            case .head:
                guard let head = try readHead(&input) else { return try hold(&input, limit: Self.maxHeadBytes, or: .headTooLarge) }
                if (100..<200).contains(head.code) && head.code != 101 { continue }
                return .head(head)
            case .fixed(let remaining):
                if remaining == 0 {
                    state = .idle
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
                    throw error.tooLarge ? ParseError.headTooLarge : .badChunk
                }
                state = .chunked(body)
                switch step {
                case .data(let data): return .body(data)
                case .end:
                    state = .idle
                    return .end
                case nil: return try hold(&input, limit: body.heldLimit, or: .badChunk)
                }
            case .untilClose:
                return HTTPWire.slice(upTo: input.readableBytes, of: &input).map { .body($0) }
            case .switching:
                state = .switched
                return .end
            }
        }
    }

    /// Keeps the rest of `input` for the next call, unless it is already more than `limit`.
    private mutating func hold(_ input: inout ByteBuffer, limit: Int, or error: ParseError) throws -> Event? {
        guard held.keep(&input, limit: limit) else { throw error }
        return nil
    }

    /// A whole head from `input` (consumed, its blank line included), or nil when its end has not
    /// come yet (nothing consumed). Sets what the body that follows is.
    private mutating func readHead(_ input: inout ByteBuffer) throws -> UpstreamAnswerHead? {
        if input.readableBytes == 0 { return nil }
        do {
            guard try held.headMayBeWhole(input) else { return nil }
        } catch {
            throw ParseError.badLineEnd
        }
        let scanned = try input.withUnsafeReadableBytes { bytes in try Self.scanHead(bytes) }
        guard let scanned else {
            held.headIsShort(input)
            return nil
        }
        held.headWasRead()
        let base = input.readerIndex
        let reason = input.getSlice(at: base + scanned.reason.lowerBound, length: scanned.reason.count)!
        let fields = input.getSlice(at: base + scanned.fields.lowerBound, length: scanned.fields.count)!
        input.moveReaderIndex(forwardBy: scanned.length)
        let code = scanned.code
        var keepAlive = scanned.version.minor >= 1 ? !scanned.close : scanned.keepAliveToken && !scanned.close
        if code == 101 {
            state = .switching
        } else if (100..<200).contains(code) {
            state = .head
        } else if answersHead || code == 204 || code == 304 {
            state = .fixed(remaining: 0)
        } else if scanned.chunked {
            state = .chunked(ChunkedBody(maxTrailerBytes: Self.maxHeadBytes))
        } else if let length = scanned.contentLength {
            state = .fixed(remaining: length)
        } else {
            state = .untilClose
            keepAlive = false
        }
        return UpstreamAnswerHead(
            version: scanned.version, code: code, reason: reason, fields: fields, droppedLines: scanned.dropped,
            cacheControlLines: scanned.cacheControl, lineCount: scanned.lineCount, keepAlive: keepAlive,
            contentLength: scanned.contentLength, chunked: scanned.chunked, security: scanned.security,
            connectionTokens: scanned.connectionTokens
        )
    }

    /// What one pass over a head's bytes finds.
    fileprivate struct ScannedHead {
        var version = HTTPVersion.http1_1
        var code = 0
        var reason = 0..<0
        var fields = 0..<0
        /// Bytes of the whole head, blank line included.
        var length = 0
        var dropped: UInt64 = 0
        var cacheControl: UInt64 = 0
        var lineCount = 0
        var close = false
        var keepAliveToken = false
        var contentLength: Int?
        var chunked = false
        var security = SecurityHeaders.Set()
        var connectionTokens: [String] = []
    }

    /// Checks and scans a head; nil when its blank line has not come yet.
    private static func scanHead(_ bytes: UnsafeRawBufferPointer) throws -> ScannedHead? {
        guard let head = try scanHeadBytes(bytes) else {
            if bytes.count > maxHeadBytes { throw ParseError.headTooLarge }
            return nil
        }
        guard head.length <= maxHeadBytes else { throw ParseError.headTooLarge }
        if head.chunked && head.contentLength != nil { throw ParseError.badTransferEncoding }
        return head
    }

    /// One pass over each byte of the head; nil when it stops short of the blank line.
    @inline(__always)
    private static func scanHeadBytes(_ bytes: UnsafeRawBufferPointer) throws -> ScannedHead? {
        var head = ScannedHead()
        let count = bytes.count
        // Status line: HTTP/1.x SP 3DIGIT [SP reason] CRLF (the shortest whole head is 16 bytes).
        guard count >= 14 else { return nil }
        guard bytes[0] == UInt8(ascii: "H"), bytes[1] == UInt8(ascii: "T"), bytes[2] == UInt8(ascii: "T"), bytes[3] == UInt8(ascii: "P"),
            bytes[4] == UInt8(ascii: "/"), bytes[5] == UInt8(ascii: "1"), bytes[6] == UInt8(ascii: "."),
            HTTPWire.isDigit(bytes[7]), bytes[8] == UInt8(ascii: " "), HTTPWire.isDigit(bytes[9]), HTTPWire.isDigit(bytes[10]), HTTPWire.isDigit(bytes[11])
        else { throw ParseError.malformedStatusLine }
        head.version = HTTPVersion(major: 1, minor: Int(bytes[7] - UInt8(ascii: "0")))
        head.code = Int(bytes[9] - 48) * 100 + Int(bytes[10] - 48) * 10 + Int(bytes[11] - 48)
        guard head.code >= 100 else { throw ParseError.malformedStatusLine }
        var end = 12
        if bytes[12] == UInt8(ascii: " ") {
            end = 13
            while end < count, bytes[end] != UInt8(ascii: "\r") {
                guard HTTPWire.isFieldValueByte(bytes[end]) else { throw bytes[end] == UInt8(ascii: "\n") ? ParseError.badLineEnd : .malformedStatusLine }
                end += 1
            }
        } else if bytes[12] != UInt8(ascii: "\r") {
            throw bytes[12] == UInt8(ascii: "\n") ? ParseError.badLineEnd : .malformedStatusLine
        }
        guard end + 1 < count else { return nil }
        guard bytes[end + 1] == UInt8(ascii: "\n") else { throw ParseError.badLineEnd }
        head.reason = min(13, end)..<end
        // Header lines, up to the blank line: each byte looked at once.
        var start = end + 2
        let fieldsStart = start
        var lineIndex = 0
        while true {
            guard start + 1 < count else { return nil }
            if bytes[start] == UInt8(ascii: "\r") {
                guard bytes[start + 1] == UInt8(ascii: "\n") else { throw ParseError.badLineEnd }
                break
            }
            // A name of token characters right up to the colon (which also refuses a folded line).
            var colon = start
            while colon < count, HTTPWire.isTokenByte(bytes[colon]) { colon += 1 }
            guard colon < count else { return nil }
            guard colon > start, bytes[colon] == UInt8(ascii: ":") else {
                throw bytes[colon] == UInt8(ascii: "\n") ? ParseError.badLineEnd : .malformedHeader
            }
            end = HTTPWire.fieldValueEnd(bytes, from: colon + 1)
            guard end < count else { return nil }
            guard bytes[end] == UInt8(ascii: "\r") else { throw bytes[end] == UInt8(ascii: "\n") ? ParseError.badLineEnd : .malformedHeader }
            guard end + 1 < count else { return nil }
            guard bytes[end + 1] == UInt8(ascii: "\n") else { throw ParseError.badLineEnd }
            let kind = AnswerField.kind(UnsafeRawBufferPointer(rebasing: bytes[start..<colon]))
            if kind != .relayed {
                let bit: UInt64 = lineIndex < 64 ? 1 << UInt64(lineIndex) : 0
                switch kind {
                case .dropped, .connection, .transferEncoding: head.dropped |= bit
                case .contentLength where head.code == 204 || head.code == 304: head.dropped |= bit
                case .cacheControl: head.cacheControl |= bit
                default: break
                }
                let value = HTTPWire.trimmed(bytes, from: colon + 1, to: end)
                try head.note(kind, UnsafeRawBufferPointer(rebasing: bytes[value]))
            }
            lineIndex += 1
            start = end + 2
        }
        head.lineCount = lineIndex
        head.fields = fieldsStart..<start
        head.length = start + 2
        return head
    }
}

extension UpstreamAnswerParser.ScannedHead {
    fileprivate static let close = Array("close".utf8)
    fileprivate static let keepAlive = Array("keep-alive".utf8)
    fileprivate static let upgrade = Array("upgrade".utf8)

    /// Takes in what a line of a notable kind says.
    fileprivate mutating func note(_ kind: AnswerField.Kind, _ value: UnsafeRawBufferPointer) throws {
        switch kind {
        case .contentLength:
            guard contentLength == nil, let length = HTTPWire.contentLength(value) else { throw UpstreamAnswerParser.ParseError.badContentLength }
            contentLength = length
        case .transferEncoding:
            guard !chunked, value.count == 7, NameTable<Bool>.equalIgnoringCase(value, HTTPWire.chunkedCoding, sameLength: true) else {
                throw UpstreamAnswerParser.ParseError.badTransferEncoding
            }
            chunked = true
        case .connection:
            HTTPWire.forEachListElement(value) { token in
                if NameTable<Bool>.equalIgnoringCase(token, Self.close, sameLength: false) {
                    close = true
                } else if NameTable<Bool>.equalIgnoringCase(token, Self.keepAlive, sameLength: false) {
                    keepAliveToken = true
                } else if !NameTable<Bool>.equalIgnoringCase(token, Self.upgrade, sameLength: false) {
                    connectionTokens.append(String(decoding: token, as: UTF8.self).lowercased())
                }
            }
        case .security(let index):
            security.insert(index)
        case .relayed, .dropped, .cacheControl:
            break
        }
    }
}
