import HummingbirdBcrypt
import NIOPosix
import Synchronization

/// bcrypt, always on the blocking thread pool, never on an event loop.
final class PasswordHasher: Sendable {
    let cost: Int
    /// A hash of a random string, checked when the email is unknown so both failures take as long.
    private let decoy = Mutex<String?>(nil)

    init(cost: Int) {
        self.cost = cost
    }

    func hash(_ password: String) async throws -> String {
        let cost = UInt8(self.cost)
        return try await NIOThreadPool.singleton.runIfActive { Bcrypt.hash(password, cost: cost) }
    }

    func verify(_ password: String, against hash: String) async throws -> Bool {
        try await NIOThreadPool.singleton.runIfActive { Bcrypt.verify(password, hash: hash) }
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
