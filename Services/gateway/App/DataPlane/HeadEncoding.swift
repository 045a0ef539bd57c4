import NIOCore
import NIOHTTP1

/// Writing HTTP/1 heads the way the gateway's encoders do: the whole head sized first, then
/// copied into the buffer in one write. NIO's encoders make four `ByteBuffer` writes per header
/// line, each with its own bounds and exclusivity checks, which callgrind put at over a tenth of
/// the gateway's instructions per request.
enum HeadEncoding {
    /// How a message's body is delimited on the wire.
    enum Framing: Equatable {
        case contentLength
        case chunked
        /// No body, or (HTTP/1.0) a body that ends when the connection closes.
        case neither
    }

    /// What the framing rules do to a head's headers (as NIO's encoders do): drop stale framing
    /// headers, or add `transfer-encoding: chunked`.
    struct FramingPlan {
        var framing: Framing
        var dropContentLength = false
        var dropTransferEncoding = false
        var addChunked = false
    }

    /// Whether an answer may have a body: no (1xx, 204, 304, an answer to CONNECT) or yes.
    enum BodyExpectation {
        case no
        case yes
    }

    /// NIO's `correctlyFrameTransportHeaders`, from one pass over the names (length first).
    static func plan(_ headers: HTTPHeaders, version: HTTPVersion, body: BodyExpectation) -> FramingPlan {
        var hasContentLength = false
        var hasTransferEncoding = false
        for (name, _) in headers {
            switch name.utf8.count {
            case 14 where ForwardedHeaders.matches(name, "content-length"):
                hasContentLength = true
            case 17 where ForwardedHeaders.matches(name, "transfer-encoding"):
                hasTransferEncoding = true
            default:
                continue
            }
        }
        let atLeast11 = version.major == 1 && version.minor >= 1
        switch body {
        case .no:
            return FramingPlan(framing: .neither, dropContentLength: hasContentLength, dropTransferEncoding: hasTransferEncoding)
        case .yes:
            if hasContentLength { return FramingPlan(framing: .contentLength, dropTransferEncoding: hasTransferEncoding) }
            if atLeast11 { return FramingPlan(framing: .chunked, dropTransferEncoding: hasTransferEncoding, addChunked: true) }
            return FramingPlan(framing: .neither)
        }
    }

    /// Writes the start line, the header lines (less what `plan` drops), the lines the gateway
    /// adds (`added`), what `plan` adds, and the blank line that ends the head, in one write.
    static func write(startLine: StartLine, headers: HTTPHeaders, added: AddedLines? = nil, plan: FramingPlan, into buffer: inout ByteBuffer) {
        let dropping = plan.dropContentLength || plan.dropTransferEncoding
        // The start line and the blank line that ends the head, each with its CRLF.
        var size = startLine.size + 4
        for (name, value) in headers where !dropping || !drops(name, plan) {
            size += lineSize(name, value)
        }
        if let added { size += added.size }
        if plan.addChunked { size += chunkedLine.utf8CodeUnitCount }
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { raw in
            var out = raw.baseAddress!
            startLine.copy(to: &out)
            copy(crlf, to: &out)
            for (name, value) in headers where !dropping || !drops(name, plan) {
                copyLine(name, value, to: &out)
            }
            added?.copy(to: &out)
            if plan.addChunked { copy(chunkedLine, to: &out) }
            copy(crlf, to: &out)
            return out - raw.baseAddress!
        }
    }

    static let noStoreLine: StaticString = "Cache-Control: no-store\r\n"

    /// Writes a relayed answer's head: the status line (in the client's version), the upstream's
    /// lines as they came (in one copy when none is dropped; else in runs between dropped lines),
    /// `Cache-Control: no-store` on credential routes, the lines the gateway adds, and
    /// `transfer-encoding: chunked` with `addChunked`.
    /// `reserving` bytes more are allocated behind the head (for a small body to follow it).
    static func write(_ relayed: RelayedHead, addChunked: Bool, reserving: Int = 0, allocator: ByteBufferAllocator) -> ByteBuffer {
        let head = relayed.head
        let noStore = relayed.noStore
        // At most this much: the upstream's lines are copied or dropped, never grown.
        let capacity = size(relayed.version) + 5 + head.reason.readableBytes + 2 + head.fields.readableBytes + noStoreLine.utf8CodeUnitCount
            + relayed.added.size + chunkedLine.utf8CodeUnitCount + 2
        var buffer = allocator.buffer(capacity: capacity + reserving)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: capacity) { raw in
            var out = raw.baseAddress!
            copy(relayed.version, to: &out)
            copy(UInt8(ascii: " "), to: &out)
            copyDecimal(head.code, to: &out)
            copy(UInt8(ascii: " "), to: &out)
            copy(head.reason, to: &out)
            copy(crlf, to: &out)
            head.fields.withUnsafeReadableBytes { fields in
                guard !head.relaysEveryLine(noStore: noStore) else {
                    out.copyMemory(from: fields.baseAddress!, byteCount: fields.count)
                    out += fields.count
                    return
                }
                var runStart = 0
                var index = 0
                AnswerLines.forEach(in: fields) { line in
                    defer { index += 1 }
                    let name = UnsafeRawBufferPointer(rebasing: fields[line.lowerBound..<AnswerLines.colon(fields, in: line)])
                    guard head.dropsLine(index, name: name, noStore: noStore) else { return }
                    if line.lowerBound > runStart {
                        out.copyMemory(from: fields.baseAddress! + runStart, byteCount: line.lowerBound - runStart)
                        out += line.lowerBound - runStart
                    }
                    runStart = line.upperBound
                }
                if fields.count > runStart {
                    out.copyMemory(from: fields.baseAddress! + runStart, byteCount: fields.count - runStart)
                    out += fields.count - runStart
                }
            }
            if noStore { copy(noStoreLine, to: &out) }
            relayed.added.copy(to: &out)
            if addChunked { copy(chunkedLine, to: &out) }
            copy(crlf, to: &out)
            return out - raw.baseAddress!
        }
        return buffer
    }

    @inline(__always)
    static func copy(_ bytes: ByteBuffer, to out: inout UnsafeMutableRawPointer) {
        bytes.withUnsafeReadableBytes { bytes in
            guard let base = bytes.baseAddress else { return }
            out.copyMemory(from: base, byteCount: bytes.count)
            out += bytes.count
        }
    }

    private static func drops(_ name: String, _ plan: FramingPlan) -> Bool {
        switch name.utf8.count {
        case 14: plan.dropContentLength && ForwardedHeaders.matches(name, "content-length")
        case 17: (plan.dropTransferEncoding || plan.addChunked) && ForwardedHeaders.matches(name, "transfer-encoding")
        default: false
        }
    }

    /// A request line (`GET /x HTTP/1.1`) or status line (`HTTP/1.1 200 OK`), without its CRLF.
    enum StartLine {
        case request(HTTPMethod, uri: String, version: HTTPVersion)
        case status(HTTPResponseStatus, version: HTTPVersion)

        var size: Int {
            switch self {
            case .request(let method, let uri, let version):
                method.rawValue.utf8.count + 1 + uri.utf8.count + 1 + HeadEncoding.size(version)
            case .status(let status, let version):
                HeadEncoding.size(version) + 1 + decimalDigits(Int(status.code)) + 1 + status.reasonPhrase.utf8.count
            }
        }

        func copy(to out: inout UnsafeMutableRawPointer) {
            switch self {
            case .request(let method, let uri, let version):
                HeadEncoding.copy(method.rawValue, to: &out)
                HeadEncoding.copy(UInt8(ascii: " "), to: &out)
                HeadEncoding.copy(uri, to: &out)
                HeadEncoding.copy(UInt8(ascii: " "), to: &out)
                HeadEncoding.copy(version, to: &out)
            case .status(let status, let version):
                HeadEncoding.copy(version, to: &out)
                HeadEncoding.copy(UInt8(ascii: " "), to: &out)
                copyDecimal(Int(status.code), to: &out)
                HeadEncoding.copy(UInt8(ascii: " "), to: &out)
                HeadEncoding.copy(status.reasonPhrase, to: &out)
            }
        }
    }

    static let separator: StaticString = ": "
    static let crlf: StaticString = "\r\n"
    static let chunkedLine: StaticString = "transfer-encoding: chunked\r\n"

    static func size(_ version: HTTPVersion) -> Int {
        5 + decimalDigits(Int(version.major)) + 1 + decimalDigits(Int(version.minor))
    }

    static func copy(_ version: HTTPVersion, to out: inout UnsafeMutableRawPointer) {
        copy("HTTP/" as StaticString, to: &out)
        copyDecimal(Int(version.major), to: &out)
        copy(UInt8(ascii: "."), to: &out)
        copyDecimal(Int(version.minor), to: &out)
    }

    /// Digits of a value that is not negative.
    static func decimalDigits(_ value: Int) -> Int {
        var digits = 1
        var rest = value.magnitude / 10
        while rest > 0 {
            digits += 1
            rest /= 10
        }
        return digits
    }

    /// Bytes `String(value)` has.
    static func decimalSize(_ value: Int) -> Int {
        decimalDigits(value) + (value < 0 ? 1 : 0)
    }

    /// `String(value)`'s bytes.
    static func copyDecimal(_ value: Int, to out: inout UnsafeMutableRawPointer) {
        if value < 0 { copy(UInt8(ascii: "-"), to: &out) }
        let digits = decimalDigits(value)
        var rest = value.magnitude
        var position = digits
        // Two digits per division (rate-limit lines carry seven numbers, two of them timestamps).
        while rest >= 10 {
            let pair = Int(rest % 100)
            rest /= 100
            position -= 2
            (out + position).storeBytes(of: UInt8(ascii: "0") + UInt8(pair / 10), as: UInt8.self)
            (out + position + 1).storeBytes(of: UInt8(ascii: "0") + UInt8(pair % 10), as: UInt8.self)
        }
        if position > 0 { out.storeBytes(of: UInt8(ascii: "0") + UInt8(rest), as: UInt8.self) }
        out += digits
    }

    /// Bytes of one header line, `name: value` and its CRLF.
    static func lineSize(_ name: String, _ value: String) -> Int {
        name.utf8.count + separator.utf8CodeUnitCount + value.utf8.count + crlf.utf8CodeUnitCount
    }

    /// One header line, `name: value` and its CRLF.
    static func copyLine(_ name: String, _ value: String, to out: inout UnsafeMutableRawPointer) {
        copy(name, to: &out)
        copy(separator, to: &out)
        copy(value, to: &out)
        copy(crlf, to: &out)
    }

    /// One header line from bytes: a client's line as it came, or a gateway line with its value.
    static func copyLine(_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer, to out: inout UnsafeMutableRawPointer) {
        copy(name, to: &out)
        copy(separator, to: &out)
        copy(value, to: &out)
        copy(crlf, to: &out)
    }

    static func copyLine(_ name: StaticString, _ value: UnsafeRawBufferPointer, to out: inout UnsafeMutableRawPointer) {
        copyLine(UnsafeRawBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount), value, to: &out)
    }

    @inline(__always)
    static func copy(_ bytes: UnsafeRawBufferPointer, to out: inout UnsafeMutableRawPointer) {
        if let base = bytes.baseAddress { out.copyMemory(from: base, byteCount: bytes.count) }
        out += bytes.count
    }

    @inline(__always)
    static func copy(_ byte: UInt8, to out: inout UnsafeMutableRawPointer) {
        out.storeBytes(of: byte, as: UInt8.self)
        out += 1
    }

    @inline(__always)
    static func copy(_ bytes: [UInt8], to out: inout UnsafeMutableRawPointer) {
        bytes.withUnsafeBytes { out.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        out += bytes.count
    }

    @inline(__always)
    static func copy(_ text: StaticString, to out: inout UnsafeMutableRawPointer) {
        out.copyMemory(from: text.utf8Start, byteCount: text.utf8CodeUnitCount)
        out += text.utf8CodeUnitCount
    }

    @inline(__always)
    static func copy(_ text: String, to out: inout UnsafeMutableRawPointer) {
        let count = text.utf8.count
        let copied = text.utf8.withContiguousStorageIfAvailable { bytes in
            if let base = bytes.baseAddress { out.copyMemory(from: base, byteCount: bytes.count) }
            return true
        }
        if copied == nil {
            // A bridged or otherwise non-contiguous string: byte by byte.
            var target = out
            for byte in text.utf8 {
                target.storeBytes(of: byte, as: UInt8.self)
                target += 1
            }
        }
        out += count
    }
}
