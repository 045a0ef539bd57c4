#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A TCP port that accepts connections (the kernel completes them) but never answers: a hung upstream.
package final class SilentListener: Sendable {
    package let port: Int
    private let descriptor: Int32

    package init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bind(fd, socketAddress, length) == 0 && listen(fd, 64) == 0 && getsockname(fd, socketAddress, &length) == 0
            }
        }
        guard fd >= 0, ok else { throw FixtureError(description: "could not open a listening socket") }
        self.descriptor = fd
        self.port = Int(UInt16(bigEndian: address.sin_port))
    }

    package var url: String { "http://127.0.0.1:\(port)" }

    deinit { close(descriptor) }
}
