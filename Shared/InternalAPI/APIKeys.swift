import Foundation

/// The shape of the opaque secrets auth hands out (refresh tokens, API keys): a fixed prefix and 32
/// random bytes as unpadded base64url. Anything else is refused before any lookup.
package enum OpaqueSecret {
    /// 32 bytes as unpadded base64url.
    package static let encodedLength = 43

    /// Whether `raw` is `prefix` followed by exactly `encodedLength` base64url characters.
    package static func isWellFormed(_ raw: some StringProtocol, prefix: String) -> Bool {
        let bytes = raw.utf8
        return bytes.count == prefix.utf8.count + encodedLength && bytes.starts(with: prefix.utf8)
            && bytes.dropFirst(prefix.utf8.count).allSatisfy(isBase64URL)
    }

    private static func isBase64URL(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "-"), UInt8(ascii: "_"):
            true
        default: false
        }
    }
}

/// An API key as auth mints it and the gateway recognises it: `sk_live_` and 43 base64url characters.
package enum APIKeyFormat {
    package static let prefix = "sk_live_"

    /// Whether a bearer credential is meant as an API key: access tokens (JWTs) start with `eyJ`,
    /// never with `sk_`. Asked of every bearer token, so a JWT is told apart by its first byte.
    @inline(__always)
    package static func isAPIKey(_ credential: String) -> Bool {
        credential.utf8.first == UInt8(ascii: "s") && credential.utf8.starts(with: "sk_".utf8)
    }

    package static func isWellFormed(_ raw: String) -> Bool {
        OpaqueSecret.isWellFormed(raw, prefix: prefix)
    }
}

/// gateway → auth (`POST /internal/gateway/api-keys/exchange`): an API key presented by a client.
package struct APIKeyExchangeRequest: Codable, Sendable {
    package var key: String

    package init(key: String) {
        self.key = key
    }
}

/// auth → gateway: an ordinary access token for the key's tenant and role, with `sid` naming the
/// key, so revoking the key voids it through the revocation feed.
package struct APIKeyExchangeReply: Codable, Sendable {
    package var accessToken: String
    /// Seconds the token is valid for (never past the key's own expiry).
    package var expiresIn: Int

    package init(accessToken: String, expiresIn: Int) {
        self.accessToken = accessToken
        self.expiresIn = expiresIn
    }
}
