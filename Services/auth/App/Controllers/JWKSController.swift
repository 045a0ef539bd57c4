import Foundation
import Hummingbird
import NIOCore
import ServiceCore

/// `/.well-known/jwks.json`: the public keys that verify auth's access tokens.
struct JWKSController: Sendable {
    let issuer: TokenIssuer

    static let maxAgeSeconds = 60

    func addRoutes(to routes: RouteTable<AppRequestContext>) {
        routes.get(".well-known/jwks.json") { _, _ in
            // JWK has its own key names (kty, crv, x, y); encode it as-is, not snake-cased.
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            let data = try encoder.encode(try await issuer.fetchJWKS())
            // A cache in front of a verifier delays a new key by up to max-age: the activation delay
            // (180 s) covers a replica's reload (30 s) + a verifier's poll (60 s) + this.
            return Response(
                status: .ok,
                headers: [.contentType: "application/json", .cacheControl: "public, max-age=\(Self.maxAgeSeconds)"],
                body: .init(byteBuffer: ByteBuffer(bytes: data))
            )
        }
    }
}
