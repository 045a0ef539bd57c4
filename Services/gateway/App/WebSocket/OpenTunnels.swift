import NIOCore
import ServiceCore
import Synchronization

/// The WebSocket tunnels open through this gateway with an access token, and the claims each was
/// admitted with. A tunnel is checked once, at its upgrade; after that it would outlive a logout,
/// a role change or a suspension for as long as the client keeps it open. The revocation and
/// tenant-policy feeds call `close(where:)` after each read, so such a tunnel ends within a
/// feed interval, like any other request with that token.
///
/// The tunnel relays bytes without parsing frames, so the gateway cannot slip a close frame in at
/// a frame boundary: it closes the client's connection (the browser sees close code 1006) and the
/// tunnel then closes the upstream's.
final class OpenTunnels: Sendable {
    private struct Tunnel {
        var claims: AccessTokenClaims
        var channel: any Channel
    }

    private let open = Mutex<[ObjectIdentifier: Tunnel]>([:])

    init() {}

    /// Follows `channel` (the client's side of a tunnel) until it closes.
    func add(_ channel: any Channel, claims: AccessTokenClaims) {
        let id = ObjectIdentifier(channel)
        open.withLock { $0[id] = Tunnel(claims: claims, channel: channel) }
        channel.closeFuture.whenComplete { [self] _ in
            _ = open.withLock { $0.removeValue(forKey: id) }
        }
    }

    /// Closes every tunnel whose claims `voided` refuses now; how many were closed.
    @discardableResult
    func close(where voided: (AccessTokenClaims) -> Bool) -> Int {
        let closing = open.withLock { open in open.values.filter { voided($0.claims) }.map(\.channel) }
        for channel in closing { channel.close(promise: nil) }
        return closing.count
    }

    var count: Int { open.withLock { $0.count } }
}
