import Crypto
import Foundation
import HummingbirdBcrypt
import Logging
import Synchronization

/// bcrypt, always in the hashing worker process (`HashingWorker`) or on the hashing threads
/// (`HashingThreads`: their own pool), never on an event loop.
///
/// bcrypt reads only the first 72 bytes of its input and stops at a NUL, so passwords are first
/// hashed with SHA-256 and base64-encoded (44 ASCII bytes): every character of a long password
/// counts. Such hashes are stored as `sha256$<bcrypt>`; older plain bcrypt hashes still verify.
final class PasswordHasher: Sendable {
    private static let prehashedPrefix = "sha256$"

    let cost: Int
    let runner: any BcryptRunner
    /// A hash of a random string, checked when the email is unknown so both failures take as long.
    private let decoy = Mutex<String?>(nil)

    init(cost: Int, runner: any BcryptRunner) {
        self.cost = cost
        self.runner = runner
    }

    convenience init(cost: Int, threads: HashingThreads = HashingThreads(priority: .idle, maxPending: 64, logger: Logger(label: "auth.hashing"))) {
        self.init(cost: cost, runner: threads)
    }

    func hash(_ password: String) async throws -> String {
        try await Self.prehashedPrefix + runner.hash(Self.prehash(password), cost: UInt8(cost))
    }

    func verify(_ password: String, against hash: String) async throws -> Bool {
        let (input, bcrypt) = hash.hasPrefix(Self.prehashedPrefix)
            ? (Self.prehash(password), String(hash.dropFirst(Self.prehashedPrefix.count))) : (password, hash)
        return try await runner.verify(input, against: bcrypt)
    }

    fileprivate static func prehash(_ password: String) -> String {
        Data(SHA256.hash(data: Data(password.utf8))).base64EncodedString()
    }

    /// Spends the same work as a real check, for an account that does not exist.
    func verifyDecoy(_ password: String) async throws {
        let existing = decoy.withLock { $0 }
        let hash: String
        if let existing {
            hash = existing
        } else {
            hash = try await self.hash("decoy-\(UInt64.random(in: .min ... .max))")
            decoy.withLock { $0 = hash }
        }
        _ = try await verify(password, against: hash)
    }
}

/// How long one password hash takes at `cost` on this thread: the mean of `rounds` hashes, done the
/// way sign-in does them (SHA-256 prehash, then bcrypt). `bench/auth.sh` divides the cores by it to
/// get the most sign-ins per second the machine can do (`suite bcrypt-time`).
package func measurePasswordHash(cost: Int, rounds: Int) -> Duration {
    let clock = ContinuousClock()
    let input = PasswordHasher.prehash("correct horse battery staple")
    let elapsed = clock.measure {
        for _ in 0..<rounds { _ = Bcrypt.hash(input, cost: UInt8(cost)) }
    }
    return elapsed / rounds
}
