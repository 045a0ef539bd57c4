import Crypto
import Foundation
import ServiceCore

/// The random secrets auth hands out in links and bodies (refresh, verification and reset tokens):
/// 32 bytes from the system's secure generator as unpadded base64url, kept only as SHA-256.
enum SecretToken {
    static func random() -> String {
        SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }.base64URLEncodedString()
    }

    /// What the database keys a token by.
    static func hash(_ token: String) -> Data { Data(SHA256.hash(data: Data(token.utf8))) }
}
