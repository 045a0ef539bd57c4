#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import HTTPTypes
import Logging
import NIOCore
import NIOPosix
import ServiceCore
import Synchronization

/// The threads password hashes run on, and who may wait for them.
///
/// bcrypt at cost 12 keeps a core busy for a quarter of a second per sign-in, so a burst of
/// sign-ins takes every core. The hashes get a thread pool of their own (one thread per core, so
/// sign-ins can still use the whole machine when nothing else wants it). With `priority` `idle`
/// or `low`, each of its threads lowers its own scheduling priority before it hashes (`SCHED_IDLE`
/// on Linux, nice 19 where that is refused; or nice 19); the default, `normal`, leaves it, because
/// `SCHED_IDLE` measured worse (bench/README.md). Nothing else runs on these threads, so a lowered
/// priority touches nothing but hashing. The pool is the process's: a priority once lowered stays
/// lowered for every later user of it in the same process (tests).
///
/// At most `maxPending` hashes wait or run at once (`HashAdmission`). These threads are
/// `PASSWORD_HASH_ISOLATION=threads`; the default runs the same hashes in a worker process
/// (`HashingWorker`), whose threads lower themselves with `apply` too.
final class HashingThreads: Sendable {
    typealias Priority = PasswordHashPriority

    /// What a hashing thread ended up with, read back from the kernel after the change.
    struct Applied: Sendable, Equatable, CustomStringConvertible {
        var policy: Int32
        var nice: Int32
        var description: String {
            policy == HashingThreads.schedIdle ? "SCHED_IDLE" : policy == SCHED_OTHER ? "SCHED_OTHER, nice \(nice)" : "policy \(policy), nice \(nice)"
        }
    }

    /// `SCHED_IDLE` (linux/sched.h), which Swift's Glibc module does not import.
    static let schedIdle: Int32 = 5

    /// One pool for the process, however many services or tests use it: threads are not cheap to
    /// start per application, and the hashes of every caller compete for the same cores anyway.
    private static let pool: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: System.coreCount)
        pool.start()
        return pool
    }()

    let priority: Priority
    let logger: Logger
    private let admission: HashAdmission
    private let reported = Atomic<Bool>(false)

    init(priority: Priority, maxPending: Int, logger: Logger) {
        self.priority = priority
        self.admission = HashAdmission(maxPending: maxPending)
        self.logger = logger
    }

    /// Hashes waiting or running now.
    var inFlight: Int { admission.inFlight }

    /// Whether one more hash would be taken now (a sign-in checks before it counts an attempt).
    var hasRoom: Bool { admission.hasRoom }

    /// Runs `work` on a hashing thread at the configured priority, or refuses at once when
    /// `maxPending` hashes are already waiting or running.
    func run<T: Sendable>(_ work: @escaping @Sendable () -> T) async throws -> T {
        let priority = self.priority
        return try await admission.admit {
            try await Self.pool.runIfActive { [self] in
                let applied = Self.apply(priority)
                if let applied, !reported.exchange(true, ordering: .relaxed) {
                    logger.info("password hashing threads lowered", metadata: ["priority": "\(priority.rawValue)", "applied": "\(applied)"])
                }
                return work()
            }
        }
    }

    /// The calling thread's policy and nice value.
    static func current() -> Applied {
        #if os(Linux)
        Applied(policy: sched_getscheduler(0), nice: getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0))
        #else
        Applied(policy: SCHED_OTHER, nice: getpriority(PRIO_PROCESS, 0))
        #endif
    }

    /// Sets the calling thread's priority when it is not already what `priority` asks; returns
    /// what it then is (read back), or nil when nothing had to change. On Linux both calls act on
    /// the calling thread alone (`PRIO_PROCESS` with 0 is the thread, not the process).
    static func apply(_ priority: Priority) -> Applied? {
        let now = current()
        switch priority {
        case .normal:
            return nil
        case .idle:
            #if os(Linux)
            if now.policy == schedIdle { return nil }
            var parameters = sched_param()
            parameters.sched_priority = 0
            if sched_setscheduler(0, schedIdle, &parameters) == 0 { return current() }
            #endif
            fallthrough
        case .low:
            if now.nice >= 19 { return nil }
            #if os(Linux)
            _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 19)
            #else
            _ = setpriority(PRIO_PROCESS, 0, 19)
            #endif
            return current()
        }
    }
}

/// The priority hashing threads lower themselves to (`PASSWORD_HASH_PRIORITY`).
package enum PasswordHashPriority: String, Sendable, CaseIterable {
    /// `SCHED_IDLE`, else nice 19.
    case idle
    /// nice 19.
    case low
    /// As every other thread (no change).
    case normal
}
