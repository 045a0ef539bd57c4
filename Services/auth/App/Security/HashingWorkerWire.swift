import NIOCore

/// The hashing worker's pipe protocol: length-prefixed binary frames, big-endian.
///
/// Every frame is `u32 length` then `length` bytes of body. A request body is `u64 id`, `u8`
/// operation (1 hash, 2 verify), `u8 cost`, `u16` + UTF-8 input, `u16` + UTF-8 bcrypt hash (empty
/// for hash). An answer body is `u64 id`, `u8` kind (1 hashed, 2 verified, 3 not verified, 4
/// failed, 5 ready), `u16` + UTF-8 text (the hash, the failure, or the worker's report of itself).
/// The worker's first frame is `ready` with id 0; the parent numbers its requests from 1.
enum HashingWorkerWire {
    /// Bodies larger than this are refused: the most two texts of at most `UInt16.max` bytes and
    /// the fixed fields take (inputs are prehashed passwords, hashes 60 bytes).
    static let maxBody = 2 * (2 + Int(UInt16.max)) + 16

    enum Operation: Sendable, Equatable {
        case hash(input: String, cost: UInt8)
        case verify(input: String, hash: String)
    }

    struct Request: Sendable, Equatable {
        var id: UInt64
        var operation: Operation
    }

    enum Outcome: Sendable, Equatable {
        case hashed(String)
        case verified(Bool)
        case failed(String)
        /// The worker is ready; the text says what it made of its priority.
        case ready(String)
    }

    struct Answer: Sendable, Equatable {
        var id: UInt64
        var outcome: Outcome
    }

    struct Malformed: Error, CustomStringConvertible {
        var description: String
    }

    static func write(_ request: Request, to buffer: inout ByteBuffer) {
        frame(into: &buffer) { body in
            body.writeInteger(request.id)
            switch request.operation {
            case .hash(let input, let cost):
                body.writeInteger(UInt8(1))
                body.writeInteger(cost)
                writeText(input, to: &body)
                writeText("", to: &body)
            case .verify(let input, let hash):
                body.writeInteger(UInt8(2))
                body.writeInteger(UInt8(0))
                writeText(input, to: &body)
                writeText(hash, to: &body)
            }
        }
    }

    static func write(_ answer: Answer, to buffer: inout ByteBuffer) {
        frame(into: &buffer) { body in
            body.writeInteger(answer.id)
            switch answer.outcome {
            case .hashed(let hash):
                body.writeInteger(UInt8(1))
                writeText(hash, to: &body)
            case .verified(let matches):
                body.writeInteger(UInt8(matches ? 2 : 3))
                writeText("", to: &body)
            case .failed(let reason):
                body.writeInteger(UInt8(4))
                writeText(reason, to: &body)
            case .ready(let report):
                body.writeInteger(UInt8(5))
                writeText(report, to: &body)
            }
        }
    }

    /// The next whole request in `buffer` (consumed), nil when more bytes are needed.
    static func readRequest(from buffer: inout ByteBuffer) throws -> Request? {
        guard var body = try readFrame(from: &buffer) else { return nil }
        guard let id = body.readInteger(as: UInt64.self), let operation = body.readInteger(as: UInt8.self),
            let cost = body.readInteger(as: UInt8.self), let input = readText(from: &body), let hash = readText(from: &body)
        else { throw Malformed(description: "truncated request") }
        switch operation {
        case 1: return Request(id: id, operation: .hash(input: input, cost: cost))
        case 2: return Request(id: id, operation: .verify(input: input, hash: hash))
        default: throw Malformed(description: "unknown operation \(operation)")
        }
    }

    /// The next whole answer in `buffer` (consumed), nil when more bytes are needed.
    static func readAnswer(from buffer: inout ByteBuffer) throws -> Answer? {
        guard var body = try readFrame(from: &buffer) else { return nil }
        guard let id = body.readInteger(as: UInt64.self), let kind = body.readInteger(as: UInt8.self), let text = readText(from: &body)
        else { throw Malformed(description: "truncated answer") }
        switch kind {
        case 1: return Answer(id: id, outcome: .hashed(text))
        case 2, 3: return Answer(id: id, outcome: .verified(kind == 2))
        case 4: return Answer(id: id, outcome: .failed(text))
        case 5: return Answer(id: id, outcome: .ready(text))
        default: throw Malformed(description: "unknown answer kind \(kind)")
        }
    }

    private static func frame(into buffer: inout ByteBuffer, _ writeBody: (inout ByteBuffer) -> Void) {
        let lengthIndex = buffer.writerIndex
        buffer.writeInteger(UInt32(0))
        writeBody(&buffer)
        buffer.setInteger(UInt32(buffer.writerIndex - lengthIndex - 4), at: lengthIndex)
    }

    private static func readFrame(from buffer: inout ByteBuffer) throws -> ByteBuffer? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return nil }
        guard length <= maxBody else { throw Malformed(description: "frame of \(length) bytes") }
        guard buffer.readableBytes >= 4 + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: 4)
        return buffer.readSlice(length: Int(length))
    }

    private static func writeText(_ text: String, to buffer: inout ByteBuffer) {
        // Texts are bounded by the callers (passwords by the policy, hashes by bcrypt); a longer
        // one is cut at the field's limit rather than corrupting the frame.
        let bytes = Array(text.utf8.prefix(Int(UInt16.max)))
        buffer.writeInteger(UInt16(bytes.count))
        buffer.writeBytes(bytes)
    }

    private static func readText(from buffer: inout ByteBuffer) -> String? {
        guard let count = buffer.readInteger(as: UInt16.self) else { return nil }
        return buffer.readString(length: Int(count))
    }
}
