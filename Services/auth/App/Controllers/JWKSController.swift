import Foundation
import Hummingbird
import NIOCore
import ServiceCore

/// `/.well-known/jwks.json`: the public keys that verify auth's access tokens.
struct JWKSController: Sendable {
    let issuer: TokenIssuer

    func addRoutes(to routes: RouteTable<AppRequestContext>) {
        routes.get(".well-known/jwks.json") { _, _ in
            // JWK has its own key names (kty, crv, x, y); encode it as-is, not snake-cased.
            let encoder = JSONEncoder()
            encoder.outputFormatting = .sortedKeys
            let data = try encoder.encode(try await issuer.fetchJWKS())
            return Response(
                status: .ok,
                headers: [.contentType: "application/json", .cacheControl: "public, max-age=300"],
                body: .init(byteBuffer: ByteBuffer(bytes: data))
            )
        }
    }
}
