import Crypto
import Foundation

/// SHA-256 for services that keep a fingerprint of something instead of the thing itself
/// (a request body holding a password, a token).
package enum SHA256Fingerprint {
    package static func of(_ bytes: some DataProtocol) -> Data {
        Data(SHA256.hash(data: bytes))
    }
}
