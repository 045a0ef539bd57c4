#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// A blocking WebSocket client on a plain socket, for tests that must control every byte: it
/// performs the opening handshake (optionally with frames in the same write), sends masked frames
/// and reads frames one at a time. Use it off the concurrency pool's threads.
package final class WebSocketTestClient: @unchecked Sendable {
    /// The answer to the opening handshake.
    package struct Response: Sendable {
        package let statusLine: String
        package let status: Int
        package let headers: [(name: String, value: String)]

        /// The first value of header `name` (case-insensitive).
        package func value(_ name: String) -> String? {
            headers.first { $0.name.lowercased() == name.lowercased() }?.value
        }
    }

    /// One frame as received (unmasked if it came masked).
    package struct Frame: Sendable {
        package let fin: Bool
        package let opcode: UInt8
        package let payload: [UInt8]

        package var text: String { String(decoding: payload, as: UTF8.self) }
        /// A Close frame's status code, if it carries one.
        package var closeCode: UInt16? {
            opcode == 0x8 && payload.count >= 2 ? UInt16(payload[0]) << 8 | UInt16(payload[1]) : nil
        }
        package var closeReason: String { opcode == 0x8 ? String(decoding: payload.dropFirst(2), as: UTF8.self) : "" }
    }

    /// This client's `Sec-WebSocket-Key`: 16 random bytes, base64.
    package let key = Data((0..<16).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
    private let fd: Int32
    private var closed = false
    /// Bytes received and not yet returned (what followed the handshake answer, a partial frame).
    private var pending: [UInt8] = []

    private init(fd: Int32, receiveTimeout: Duration) {
        self.fd = fd
        let (seconds, attoseconds) = receiveTimeout.components
        var timeout = timeval(tv_sec: .init(seconds), tv_usec: .init(attoseconds / 1_000_000_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Connects to 127.0.0.1:`port`; reads wait at most `receiveTimeout`.
    package static func connect(port: Int, receiveTimeout: Duration = .seconds(5)) throws -> WebSocketTestClient {
        #if canImport(Glibc)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw WebSocketTestError.connectFailed(port: port) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Foundation.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        guard connected else {
            Foundation.close(fd)
            throw WebSocketTestError.connectFailed(port: port)
        }
        return WebSocketTestClient(fd: fd, receiveTimeout: receiveTimeout)
    }

    /// Sends the opening handshake for `path` with `headers` added, and `trailing` in the same
    /// write (frames sent before the answer); returns the answer's status line and headers.
    package func handshake(path: String = "/", headers: [(String, String)] = [], trailing: [UInt8] = []) throws -> Response {
        var request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        request += "Sec-WebSocket-Key: \(key)\r\nSec-WebSocket-Version: 13\r\n"
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        request += "\r\n"
        try sendRaw(Array(request.utf8) + trailing)
        return try readResponse()
    }

    /// Reads an HTTP response head (status line and headers).
    package func readResponse() throws -> Response {
        let marker = Array("\r\n\r\n".utf8)
        var end: Int?
        while end == nil {
            end = pending.indices.dropLast(3).first { pending[$0..<($0 + 4)].elementsEqual(marker) }
            if end == nil { try fill() }
        }
        let head = String(decoding: pending[..<end!], as: UTF8.self)
        pending.removeSubrange(..<(end! + 4))
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst()
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, let status = Int(parts[1]) else { throw WebSocketTestError.malformed(statusLine) }
        let headers = lines.compactMap { line -> (name: String, value: String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        return Response(statusLine: statusLine, status: status, headers: headers)
    }

    /// Sends a masked text frame.
    package func send(text: String) throws {
        try sendRaw(Self.maskedFrame(opcode: 0x1, payload: Array(text.utf8)))
    }

    /// Sends a masked Close frame.
    package func sendClose(code: UInt16, reason: String = "") throws {
        try sendRaw(Self.maskedFrame(opcode: 0x8, payload: [UInt8(code >> 8), UInt8(code & 0xFF)] + Array(reason.utf8)))
    }

    /// A client-to-server frame: masked with a random key, as RFC 6455 §5.3 requires.
    package static func maskedFrame(opcode: UInt8, payload: [UInt8], fin: Bool = true) -> [UInt8] {
        var frame: [UInt8] = [(fin ? 0x80 : 0) | opcode]
        switch payload.count {
        case ..<126: frame.append(0x80 | UInt8(payload.count))
        case ...0xFFFF: frame += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        default: frame += [0x80 | 127] + (0..<8).map { UInt8(truncatingIfNeeded: UInt64(payload.count) >> UInt64(56 - $0 * 8)) }
        }
        let mask = (0..<4).map { _ in UInt8.random(in: 0...255) }
        frame += mask
        frame += payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
        return frame
    }

    /// Reads one frame (waiting up to the receive timeout for it).
    package func readFrame() throws -> Frame {
        try need(2)
        let fin = pending[0] & 0x80 != 0
        let opcode = pending[0] & 0x0F
        let masked = pending[1] & 0x80 != 0
        var length = Int(pending[1] & 0x7F)
        var offset = 2
        if length == 126 {
            try need(4)
            length = Int(pending[2]) << 8 | Int(pending[3])
            offset = 4
        } else if length == 127 {
            try need(10)
            length = (2..<10).reduce(0) { $0 << 8 | Int(pending[$1]) }
            offset = 10
        }
        let maskOffset = offset
        if masked { offset += 4 }
        try need(offset + length)
        var payload = Array(pending[offset..<(offset + length)])
        if masked {
            let mask = pending[maskOffset..<(maskOffset + 4)].map { $0 }
            payload = payload.enumerated().map { $0.element ^ mask[$0.offset % 4] }
        }
        pending.removeFirst(offset + length)
        return Frame(fin: fin, opcode: opcode, payload: payload)
    }

    /// Reads exactly `count` bytes, whatever they are (a tunnel's raw bytes, a response body).
    package func read(count: Int) throws -> [UInt8] {
        try need(count)
        defer { pending.removeFirst(count) }
        return Array(pending.prefix(count))
    }

    /// True once the peer has closed the connection (end of stream or reset) within the receive timeout.
    package func waitForClose() -> Bool {
        while true {
            do { try fill() } catch WebSocketTestError.closed { return true } catch { return false }
        }
    }

    /// Sends all of `bytes` in one call where the kernel allows (one TCP segment for small writes);
    /// `timedOut` if the peer stopped taking them for the send timeout (the receive timeout's value).
    package func sendRaw(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Foundation.send(fd, $0.baseAddress, $0.count, Self.noSignal) }
            if sent < 0 && errno == EINTR { continue }
            if sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { throw WebSocketTestError.timedOut }
            guard sent > 0 else { throw WebSocketTestError.closed }
            offset += sent
        }
    }

    /// Half-closes: the peer reads end of stream, this client can still read.
    package func shutdownWrite() {
        shutdown(fd, Int32(SHUT_WR))
    }

    /// Closes the descriptor once (see `RawConnection.close`).
    package func close() {
        guard !closed else { return }
        closed = true
        Foundation.close(fd)
    }

    private static var noSignal: Int32 {
        #if canImport(Glibc)
        Int32(MSG_NOSIGNAL)
        #else
        0
        #endif
    }

    private func need(_ count: Int) throws {
        while pending.count < count { try fill() }
    }

    private func fill() throws {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var received: Int
        repeat {
            received = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        } while received < 0 && errno == EINTR
        if received > 0 {
            pending.append(contentsOf: buffer[..<received])
        } else if received == 0 || errno == ECONNRESET {
            throw WebSocketTestError.closed
        } else {
            throw WebSocketTestError.timedOut
        }
    }
}

/// Why a `WebSocketTestClient` call failed.
package enum WebSocketTestError: Error, Equatable {
    case connectFailed(port: Int)
    case closed
    case timedOut
    case malformed(String)
}
