import Foundation
import InternalAPI

/// An API key's secret: `sk_live_` and 32 random bytes as base64url. Shown once, when the key is
/// made; the database keeps its SHA-256 and the few characters that tell keys apart in a list.
struct APIKeySecret: Sendable, Equatable {
    let value: String

    static func generate() -> APIKeySecret {
        APIKeySecret(value: APIKeyFormat.prefix + SecretToken.random())
    }

    /// A string shaped like one of our keys, or nil; anything else is refused before any lookup.
    static func parse(_ raw: String) -> APIKeySecret? {
        APIKeyFormat.isWellFormed(raw) ? APIKeySecret(value: raw) : nil
    }

    private init(value: String) {
        self.value = value
    }

    var hash: Data { SecretToken.hash(value) }

    /// The prefix and the first four random characters, e.g. `sk_live_Q3xa`.
    var displayPrefix: String { String(value.prefix(APIKeyFormat.prefix.count + 4)) }

    var lastFour: String { String(value.suffix(4)) }
}
