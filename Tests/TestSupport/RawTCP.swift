#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization

/// One blocking TCP connection, for tests that must control every byte and every pause: partial
/// bodies, early answers, resets. Used from `RawTCP.run`, never on the concurrency pool's threads.
package final class RawConnection: @unchecked Sendable {
    private let fd: Int32
    private var pending: [UInt8] = []
    private var closed = false

    init(fd: Int32) {
        self.fd = fd
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Connects to 127.0.0.1:`port`.
    package static func connect(port: Int) throws -> RawConnection {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let ok = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        guard fd >= 0, ok else {
            Glibc.close(fd)
            throw FixtureError(description: "could not connect to port \(port)")
        }
        return RawConnection(fd: fd)
    }

    /// Sends all of `text`; false once the peer has gone.
    @discardableResult
    package func send(_ text: String) -> Bool { send(Array(text.utf8)) }

    @discardableResult
    package func send(_ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if sent < 0 && errno == EINTR { continue }
            if sent <= 0 { return false }
            offset += sent
        }
        return true
    }

    /// Reads until `marker` has arrived; returns everything before it (nil if the peer closed first).
    package func read(until marker: String) -> String? {
        let needle = Array(marker.utf8)
        while true {
            if let range = Self.find(needle, in: pending) {
                let head = Array(pending[..<range])
                pending.removeSubrange(..<(range + needle.count))
                return String(decoding: head, as: UTF8.self)
            }
            guard fill() else { return nil }
        }
    }

    /// Reads exactly `count` bytes (fewer if the peer closed).
    package func read(count: Int) -> [UInt8] {
        while pending.count < count, fill() {}
        let taken = Array(pending.prefix(count))
        pending.removeFirst(taken.count)
        return taken
    }

    /// Reads one HTTP/1.1 response with a `Content-Length` body: status, lower-cased headers, body.
    package func readResponse() -> (status: Int, headers: [String: String], body: String)? {
        guard let head = read(until: "\r\n\r\n") else { return nil }
        var lines = head.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else { return nil }
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let length = headers["content-length"].flatMap(Int.init) ?? 0
        return (status, headers, String(decoding: read(count: length), as: UTF8.self))
    }

    /// What has arrived (at least one byte, waiting for it), or nil once the peer has closed.
    package func readSome() -> [UInt8]? {
        if pending.isEmpty, !fill() { return nil }
        defer { pending.removeAll() }
        return pending
    }

    /// Reads and drops whatever comes until the peer closes (true) or the receive timeout passes (false).
    package func waitForClose() -> Bool {
        pending.removeAll()
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let received = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if received > 0 { continue }
            if received == 0 { return true }
            switch errno {
            case EINTR: continue
            case ECONNRESET: return true
            default: return false
            }
        }
    }

    /// How long a read waits before giving up (10 s unless set).
    package func setReceiveTimeout(milliseconds: Int) {
        var timeout = timeval(tv_sec: milliseconds / 1000, tv_usec: Int((milliseconds % 1000) * 1000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// True once the peer has closed its side (reads return end of stream), within the receive timeout.
    package func isClosedByPeer() -> Bool {
        while fill() {}
        return true
    }

    /// Closes the descriptor once: a second close could hit a descriptor number the kernel has
    /// since given to another socket of this process (NIO's, which then traps on `EBADF`).
    package func close() {
        guard !closed else { return }
        closed = true
        Glibc.close(fd)
    }

    /// Closes with a TCP reset instead of an orderly FIN.
    package func reset() {
        guard !closed else { return }
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        close()
    }

    private func fill() -> Bool {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var received: Int
        repeat {
            // Signals (SIGCHLD from other tests' child processes) interrupt a blocking recv.
            received = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        } while received < 0 && errno == EINTR
        guard received > 0 else { return false }
        pending.append(contentsOf: buffer[..<received])
        return true
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for start in 0...(haystack.count - needle.count) where haystack[start..<(start + needle.count)].elementsEqual(needle) {
            return start
        }
        return nil
    }
}

/// A loopback TCP server whose every connection is handled by a blocking closure on its own thread:
/// an upstream that misbehaves exactly as a test needs.
package final class RawTCPServer: Sendable {
    package let port: Int
    private let fd: Int32
    private let accepted = Tally()

    package init(handler: @escaping @Sendable (RawConnection) -> Void) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var reuse: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && listen(fd, 128) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard fd >= 0, ok else { throw FixtureError(description: "could not open a listening socket") }
        self.fd = fd
        self.port = Int(UInt16(bigEndian: address.sin_port))
        let accepted = self.accepted
        Thread.detachNewThread { [fd] in
            while true {
                let client = accept(fd, nil, nil)
                if client < 0 && errno == EINTR { continue }
                if client < 0 { return }
                accepted.add()
                Thread.detachNewThread {
                    let connection = RawConnection(fd: client)
                    handler(connection)
                }
            }
        }
    }

    package var url: String { "http://127.0.0.1:\(port)" }

    /// Connections accepted so far.
    package var connections: Int { accepted.count }

    package func stop() { shutdown(fd, Int32(SHUT_RDWR)); close(fd) }

    deinit { stop() }
}

/// A count shared between threads.
package final class Tally: Sendable {
    private let value = Atomic<Int>(0)

    package init() {}

    package func add() { value.add(1, ordering: .relaxed) }

    package var count: Int { value.load(ordering: .relaxed) }
}

package enum RawTCP {
    /// Runs blocking socket work on a thread of its own, so the concurrency pool never waits on it.
    package static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(with: Result { try body() })
            }
        }
    }
}
