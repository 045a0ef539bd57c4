import Crypto
import Foundation
import InternalAPI

/// An opaque refresh token: `rt_` and 32 random bytes, base64url. Only its SHA-256 is stored.
///
/// When a token is rotated, its successor is kept sealed (AES-GCM) under a key derived from the
/// rotated token with HKDF. Within the reuse interval, whoever presents the old token again (a
/// second browser tab, a retried request) can be given that same successor, while the database
/// alone reveals neither: it holds hashes and ciphertexts whose keys it never sees.
struct RefreshToken: Sendable, Equatable {
    static let prefix = "rt_"

    let value: String

    init(value: String) {
        self.value = value
    }

    /// A fresh token from the system's secure random generator.
    static func generate() -> RefreshToken {
        RefreshToken(value: prefix + SecretToken.random())
    }

    /// A string shaped like one of our tokens, or nil; anything else is refused before any lookup.
    static func parse(_ raw: String) -> RefreshToken? {
        OpaqueSecret.isWellFormed(raw, prefix: prefix) ? RefreshToken(value: raw) : nil
    }

    /// What the database keys the token by.
    var hash: Data { SecretToken.hash(value) }

    /// `successor`, readable only with this token.
    func seal(_ successor: RefreshToken) throws -> Data {
        guard let combined = try AES.GCM.seal(Data(successor.value.utf8), using: sealingKey).combined else {
            throw RefreshTokenError.sealing
        }
        return combined
    }

    /// The successor sealed by `seal`; nil when `sealed` was not made with this token.
    func unseal(_ sealed: Data) -> RefreshToken? {
        guard let box = try? AES.GCM.SealedBox(combined: sealed), let plain = try? AES.GCM.open(box, using: sealingKey),
            let value = String(data: plain, encoding: .utf8)
        else { return nil }
        return RefreshToken.parse(value)
    }

    private var sealingKey: SymmetricKey {
        HKDF<SHA256>.deriveKey(
            inputKeyMaterial: SymmetricKey(data: Data(value.utf8)), info: Data("refresh-token-successor".utf8), outputByteCount: 32
        )
    }
}

enum RefreshTokenError: Error {
    case sealing
}
