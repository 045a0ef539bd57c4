import Crypto
import Foundation
import NIOCore
import NIOHTTP1

/// The RFC 6455 arithmetic the gateway needs without speaking WebSocket itself: recognising an
/// upgrade request, the accept value for a key, and a server's Close frame.
enum WebSocketHandshake {
    /// Appended to the client's key before hashing (RFC 6455 §1.3).
    static let guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    /// Close code for a message that violates the server's policy (RFC 6455 §7.4.1), e.g. no valid token.
    static let policyViolation: UInt16 = 1008
    /// Close code asking the client to try again later (IANA registry): a rate limit refused it.
    static let tryAgainLater: UInt16 = 1013

    /// Control frames carry at most 125 payload bytes (RFC 6455 §5.5); the code takes 2 of them.
    static let maxCloseReasonBytes = 123

    /// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`: base64(SHA-1(key + GUID)).
    static func acceptValue(forKey key: String) -> String {
        Data(Insecure.SHA1.hash(data: Array((key + guid).utf8))).base64EncodedString()
    }

    /// Whether `head` opens a WebSocket (RFC 6455 §4.2.1). Header names and tokens are matched
    /// case-insensitively; `Connection` may list other tokens (`keep-alive, Upgrade`).
    static func isUpgrade(_ head: HTTPRequestHead) -> Bool {
        let headers = head.headers
        guard head.method == .GET, head.version.major == 1, head.version.minor >= 1 else { return false }
        guard headers[canonicalForm: "connection"].contains(where: { $0.lowercased() == "upgrade" }) else { return false }
        guard headers[canonicalForm: "upgrade"].contains(where: { $0.lowercased() == "websocket" }) else { return false }
        // Exactly one key: two would leave the accept value ambiguous.
        let keys = headers["sec-websocket-key"]
        guard keys.count == 1, !keys[0].isEmpty else { return false }
        return headers[canonicalForm: "sec-websocket-version"].contains("13")
    }

    /// An unmasked (server-to-client) Close frame. The reason is cut at a whole Unicode scalar so it
    /// stays valid UTF-8, which clients require of a close reason.
    static func closeFrame(code: UInt16, reason: String) -> ByteBuffer {
        var reasonBytes: [UInt8] = []
        for scalar in reason.unicodeScalars {
            if reasonBytes.count + scalar.utf8.count > maxCloseReasonBytes { break }
            reasonBytes.append(contentsOf: scalar.utf8)
        }
        var frame = ByteBuffer()
        frame.reserveCapacity(4 + reasonBytes.count)
        frame.writeInteger(UInt8(0x88))  // FIN, opcode 0x8 (close)
        frame.writeInteger(UInt8(2 + reasonBytes.count))  // mask bit clear; < 126, so no extended length
        frame.writeInteger(code)  // network byte order
        frame.writeBytes(reasonBytes)
        return frame
    }
}
