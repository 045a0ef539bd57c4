import NIOCore

/// What the gateway's two HTTP/1 readers (`RequestParser` for its clients, `UpstreamAnswerParser`
/// for its upstreams) share: RFC 9110's byte classes, the search for the end of a head that comes
/// in pieces, and chunked bodies.
enum HTTPWire {
    /// `tchar` (RFC 9110 §5.6.2): a byte of a method or a header name.
    @inline(__always)
    static func isTokenByte(_ byte: UInt8) -> Bool {
        // Bit n of the mask for byte n (0-63, 64-127): ! # $ % & ' * + - . 0-9 A-Z ^ _ ` a-z | ~
        byte < 64 ? (0x03FF_6CFA_0000_0000 as UInt64) >> byte & 1 == 1 : byte < 128 && (0x57FF_FFFF_C7FF_FFFE as UInt64) >> (byte - 64) & 1 == 1
    }

    /// A byte a field value or reason phrase may hold: visible characters, space, tab, obs-text.
    @inline(__always)
    static func isFieldValueByte(_ byte: UInt8) -> Bool {
        byte >= 0x20 ? byte != 0x7F : byte == UInt8(ascii: "\t")
    }

    /// The offset of the first byte at or after `from` that a field value may not hold (its CR,
    /// normally), or `bytes.count`. Eight bytes at a time while none is a control byte or DEL
    /// (a header value is mostly a long token), then byte by byte.
    @inline(__always)
    static func fieldValueEnd(_ bytes: UnsafeRawBufferPointer, from: Int) -> Int {
        var index = from
        let count = bytes.count
        if let base = bytes.baseAddress {
            while index + 8 <= count {
                let word = base.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                // Some byte below 0x20 (bytes from 0x80 up are never taken for one), or some byte 0x7F.
                let control = (word &- 0x2020_2020_2020_2020) & ~word & 0x8080_8080_8080_8080
                let delete = word ^ 0x7F7F_7F7F_7F7F_7F7F
                if control | ((delete &- 0x0101_0101_0101_0101) & ~delete & 0x8080_8080_8080_8080) != 0 { break }
                index += 8
            }
        }
        while index < count, isFieldValueByte(bytes[index]) { index += 1 }
        return index
    }

    @inline(__always)
    static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    /// `from..<to` without leading and trailing spaces and tabs.
    static func trimmed(_ bytes: UnsafeRawBufferPointer, from: Int, to: Int) -> Range<Int> {
        var from = from
        var to = to
        while from < to, bytes[from] == UInt8(ascii: " ") || bytes[from] == UInt8(ascii: "\t") { from += 1 }
        while to > from, bytes[to - 1] == UInt8(ascii: " ") || bytes[to - 1] == UInt8(ascii: "\t") { to -= 1 }
        return from..<to
    }

    /// A `Content-Length` value (already trimmed): digits only, at most 18 of them; nil otherwise.
    static func contentLength(_ value: UnsafeRawBufferPointer) -> Int? {
        guard !value.isEmpty, value.count <= 18 else { return nil }
        var length = 0
        for byte in value {
            guard isDigit(byte) else { return nil }
            length = length * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return length
    }

    static let chunkedCoding = Array("chunked".utf8)

    /// Calls `body` with each element of a comma-separated list value (`Connection`,
    /// `Transfer-Encoding`), trimmed, empty ones skipped.
    static func forEachListElement(_ value: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) throws -> Void) rethrows {
        for element in value.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: true) {
            let element = UnsafeRawBufferPointer(rebasing: element)
            let trimmed = UnsafeRawBufferPointer(rebasing: element[trimmed(element, from: 0, to: element.count)])
            if !trimmed.isEmpty { try body(trimmed) }
        }
    }

    /// Up to `count` bytes of `input` as a slice of it (a part of a body of known length); nil when
    /// `input` has none.
    @inline(__always)
    static func slice(upTo count: Int, of input: inout ByteBuffer) -> ByteBuffer? {
        guard input.readableBytes > 0 else { return nil }
        return input.readSlice(length: min(count, input.readableBytes))!
    }

    /// A line feed without a carriage return before it, or a carriage return alone.
    struct BadLineEnd: Error {}

    /// Whether the blank line that ends a head is in `bytes`, searching from `searched` (bytes
    /// before it were searched already), line ends checked on the way. A head that trickles in
    /// byte by byte is then scanned in full once, when it is whole, not once per piece.
    static func headEnds(in bytes: UnsafeRawBufferPointer, searched: Int) throws(BadLineEnd) -> Bool {
        for index in searched..<bytes.count {
            let previous = index > 0 ? bytes[index - 1] : 0
            if bytes[index] == UInt8(ascii: "\n") {
                guard previous == UInt8(ascii: "\r") else { throw BadLineEnd() }
                if index >= 3, bytes[index - 2] == UInt8(ascii: "\n"), bytes[index - 3] == UInt8(ascii: "\r") { return true }
            } else if previous == UInt8(ascii: "\r") {
                throw BadLineEnd()
            }
        }
        return false
    }
}

/// What a reader keeps between reads: the bytes of a head or line that has not all come, and how
/// far a head among them was searched for its end, so that one trickling in byte by byte costs a
/// pass over each byte once, not over all of them each time.
struct HeldBytes {
    private var bytes: ByteBuffer?
    private var headSearched: Int?

    var isEmpty: Bool { bytes == nil }

    /// Puts what was held in front of `input`.
    mutating func prepend(to input: inout ByteBuffer) {
        guard var earlier = bytes, input.readableBytes > 0 else { return }
        bytes = nil
        earlier.writeBuffer(&input)
        input = earlier
    }

    /// Keeps the rest of `input` for the next read; false (nothing kept) when it is more than `limit`.
    mutating func keep(_ input: inout ByteBuffer, limit: Int) -> Bool {
        guard input.readableBytes <= limit else { return false }
        if input.readableBytes > 0 {
            bytes = input
            input.moveReaderIndex(to: input.writerIndex)
        }
        return true
    }

    /// Whether the head at the start of `input` may be whole: yes unless it was found short before,
    /// then only once its blank line is there (what was searched then is not searched again).
    mutating func headMayBeWhole(_ input: ByteBuffer) throws(HTTPWire.BadLineEnd) -> Bool {
        guard let searched = headSearched else { return true }
        var badLineEnd = false
        let whole = input.withUnsafeReadableBytes { bytes in
            do {
                return try HTTPWire.headEnds(in: bytes, searched: searched)
            } catch {
                badLineEnd = true
                return false
            }
        }
        if badLineEnd { throw HTTPWire.BadLineEnd() }
        if !whole { headSearched = input.readableBytes }
        return whole
    }

    /// The head in `input` stopped short of its end: next time, search only what comes after.
    mutating func headIsShort(_ input: ByteBuffer) {
        headSearched = input.readableBytes
    }

    /// A head was read: the next one starts unsearched.
    mutating func headWasRead() {
        headSearched = nil
    }

    mutating func clear() {
        bytes = nil
        headSearched = nil
    }
}

/// A chunked body (RFC 9112 §7.1) read as its bytes come: the data as slices of the buffers it
/// came in, chunk extensions and trailers read and dropped (the gateway relays neither).
struct ChunkedBody {
    enum Step {
        case data(ByteBuffer)
        case end
    }

    struct Malformed: Error {
        /// Trailers beyond `maxTrailerBytes`, rather than a broken chunk.
        var tooLarge = false
    }

    /// Longest chunk-size line (its extensions included).
    static let maxSizeLineBytes = 4096

    private enum State {
        case size
        case data(remaining: Int)
        case dataEnd
        case trailers(bytes: Int)
    }

    private var state = State.size
    let maxTrailerBytes: Int

    init(maxTrailerBytes: Int) {
        self.maxTrailerBytes = maxTrailerBytes
    }

    /// The most bytes an unfinished line may hold before more come (`next` returned nil).
    var heldLimit: Int {
        switch state {
        case .size, .data: Self.maxSizeLineBytes
        case .dataEnd: 2
        case .trailers(let bytes): max(0, maxTrailerBytes - bytes)
        }
    }

    /// The next step from `input`, or nil when `input` holds no more of one; what is left of
    /// `input` then is the start of a line, to be given again with the bytes that follow.
    mutating func next(_ input: inout ByteBuffer) throws(Malformed) -> Step? {
        while true {
            switch state {
            case .data(let remaining):
                guard let data = HTTPWire.slice(upTo: remaining, of: &input) else { return nil }
                state = data.readableBytes == remaining ? .dataEnd : .data(remaining: remaining - data.readableBytes)
                return .data(data)
            case .dataEnd:
                guard input.readableBytes >= 2 else { return nil }
                guard input.readInteger(as: UInt16.self) == 0x0D0A else { throw Malformed() }
                state = .size
            case .size:
                guard let line = try Self.readLine(&input, limit: Self.maxSizeLineBytes) else { return nil }
                let size = try Self.size(line)
                state = size == 0 ? .trailers(bytes: 0) : .data(remaining: size)
            case .trailers(let bytes):
                guard let line = try Self.readLine(&input, limit: heldLimit) else { return nil }
                let total = bytes + line.readableBytes + 2
                guard total <= maxTrailerBytes else { throw Malformed(tooLarge: true) }
                if line.readableBytes == 0 { return .end }
                state = .trailers(bytes: total)
            }
        }
    }

    /// One CRLF-terminated line (without its CRLF), or nil when its end has not come yet.
    private static func readLine(_ input: inout ByteBuffer, limit: Int) throws(Malformed) -> ByteBuffer? {
        let length = input.withUnsafeReadableBytes { bytes -> Int? in
            guard let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) else { return bytes.count > limit ? -1 : nil }
            guard newline > 0, bytes[newline - 1] == UInt8(ascii: "\r") else { return -1 }
            return newline - 1
        }
        guard let length else { return nil }
        guard length >= 0 else { throw Malformed() }
        let line = input.readSlice(length: length)!
        input.moveReaderIndex(forwardBy: 2)
        return line
    }

    /// A chunk-size line's size: hex digits, then optional extensions (ignored).
    private static func size(_ line: ByteBuffer) throws(Malformed) -> Int {
        var size = 0
        var digits = 0
        for byte in line.readableBytesView {
            let value: Int
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = Int(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): value = Int(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): value = Int(byte - UInt8(ascii: "A") + 10)
            case UInt8(ascii: ";"), UInt8(ascii: " "), UInt8(ascii: "\t"):
                guard digits > 0 else { throw Malformed() }
                return size
            default:
                throw Malformed()
            }
            digits += 1
            guard digits <= 15 else { throw Malformed() }
            size = size << 4 | value
        }
        guard digits > 0 else { throw Malformed() }
        return size
    }
}
