import HTTPTypes
import HummingbirdBcrypt
import ServiceCore
import Synchronization

/// Where bcrypt runs for `PasswordHasher`: threads of this process (`HashingThreads`) or a worker
/// process of its own (`HashingWorker`, `PASSWORD_HASH_ISOLATION`). Either admits at most
/// `PASSWORD_HASH_MAX_PENDING` hashes at once and refuses one more with `HashAdmission.busy`.
protocol BcryptRunner: Sendable {
    /// Whether one more hash would be taken now (a sign-in checks before it counts an attempt).
    var hasRoom: Bool { get }
    /// bcrypt of `input` (already prehashed by `PasswordHasher`) at `cost`.
    func hash(_ input: String, cost: UInt8) async throws -> String
    /// Whether `input` matches the bcrypt `hash`.
    func verify(_ input: String, against hash: String) async throws -> Bool
}

/// At most `maxPending` hashes waiting or running at once (each service instance); one more is
/// refused at once (503, `Retry-After`) instead of joining an ever longer queue.
final class HashAdmission: Sendable {
    let maxPending: Int
    private let pending = Atomic<Int>(0)

    init(maxPending: Int) {
        self.maxPending = maxPending
    }

    /// Hashes waiting or running now.
    var inFlight: Int { pending.load(ordering: .relaxed) }

    var hasRoom: Bool { inFlight < maxPending }

    static var busy: AppError {
        AppError(
            .serviceUnavailable, code: "HASHING_BUSY", detail: "Too many sign-ins are being checked at once; try again shortly",
            headers: [.retryAfter: "1"]
        )
    }

    /// Runs `work` counted as one hash, or throws `busy` at once when `maxPending` are already in.
    func admit<T: Sendable>(_ work: () async throws -> T) async throws -> T {
        guard pending.wrappingAdd(1, ordering: .relaxed).newValue <= maxPending else {
            pending.wrappingSubtract(1, ordering: .relaxed)
            throw Self.busy
        }
        defer { pending.wrappingSubtract(1, ordering: .relaxed) }
        return try await work()
    }
}

extension HashingThreads: BcryptRunner {
    func hash(_ input: String, cost: UInt8) async throws -> String {
        try await run { Bcrypt.hash(input, cost: cost) }
    }

    func verify(_ input: String, against hash: String) async throws -> Bool {
        try await run { Bcrypt.verify(input, hash: hash) }
    }
}
