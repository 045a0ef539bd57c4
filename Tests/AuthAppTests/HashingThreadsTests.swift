import Dispatch
import Foundation
import HTTPTypes
import Logging
import ServiceCore
import Testing

@testable import AuthApp

#if canImport(Glibc)
import Glibc
#endif

/// Password hashes run on threads of their own at the lowest priority, and no more than
/// `PASSWORD_HASH_MAX_PENDING` wait for them (bench/auth.sh: `/me` while sign-ins take every core).
@Suite("auth hashing threads")
struct HashingThreadsTests {
    /// Scheduling policy and nice value of the calling thread, as the kernel reports them in
    /// `/proc/thread-self/stat` (fields 19 and 41), not as our own code remembers them.
    static func schedulingFromProc() throws -> (nice: Int, policy: Int) {
        let stat = try String(contentsOfFile: "/proc/thread-self/stat", encoding: .utf8)
        // The command name (field 2) may hold spaces; fields after it are counted from its ')'.
        let rest = stat[stat.index(after: stat.lastIndex(of: ")")!)...].split(separator: " ")
        // rest[0] is field 3 (state): field n is rest[n - 3].
        return (Int(rest[19 - 3])!, Int(rest[41 - 3])!)
    }

    /// The calling thread's id: `/proc/thread-self` links to `<pid>/task/<tid>`.
    static func threadID() -> String {
        ((try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/thread-self")) ?? "").split(separator: "/").last.map(String.init) ?? ""
    }

    static func threads(maxPending: Int = 64) -> HashingThreads {
        HashingThreads(priority: .idle, maxPending: maxPending, logger: Logger(label: "test.hashing"))
    }

    @Test func hashesRunAtIdlePriorityAndNothingElseDoes() async throws {
        #if os(Linux)
        let threads = Self.threads()
        // Several runs, so more than one of the pool's threads is likely to be asked.
        for _ in 0..<8 {
            let (proc, reported, tid) = try await threads.run { () -> (Result<(nice: Int, policy: Int), any Error>, HashingThreads.Applied, String) in
                (Result { try Self.schedulingFromProc() }, HashingThreads.current(), Self.threadID())
            }
            let scheduling = try proc.get()
            #expect(scheduling.policy == Int(HashingThreads.schedIdle), "hashing thread \(tid): policy \(scheduling.policy)")
            #expect(reported.policy == HashingThreads.schedIdle)
            // The same thread seen from outside it: /proc/self/task/<tid>/stat.
            let outside = try String(contentsOfFile: "/proc/self/task/\(tid)/stat", encoding: .utf8)
            let fields = outside[outside.index(after: outside.lastIndex(of: ")")!)...].split(separator: " ")
            #expect(fields[41 - 3] == "5")
        }
        // The caller (a concurrency thread, as the event loops) keeps its normal policy.
        #expect(try Self.schedulingFromProc().policy == 0)
        #endif
    }

    @Test func aHashBeyondTheBoundIsRefusedAtOnce() async throws {
        let threads = Self.threads(maxPending: 1)
        let release = DispatchSemaphore(value: 0)
        let started = DispatchSemaphore(value: 0)
        let first = Task {
            try await threads.run { () -> Int in
                started.signal()
                release.wait()
                return 1
            }
        }
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                started.wait()
                continuation.resume()
            }
        }
        #expect(threads.inFlight == 1)
        #expect(!threads.hasRoom)
        do {
            _ = try await threads.run { 2 }
            Issue.record("a second hash was taken beyond the bound")
        } catch let error as AppError {
            #expect(error.status == .serviceUnavailable)
            #expect(error.code == "HASHING_BUSY")
            #expect(error.headers[.retryAfter] == "1")
        }
        // The refusal did not take the slot: once the first is done, the next one runs.
        #expect(threads.inFlight == 1)
        release.signal()
        #expect(try await first.value == 1)
        #expect(threads.inFlight == 0)
        #expect(try await threads.run { 3 } == 3)
    }

    @Test func hashesStillVerifyOnTheseThreads() async throws {
        let hasher = PasswordHasher(cost: 4, threads: Self.threads())
        let hash = try await hasher.hash("Correct-horse-1")
        #expect(try await hasher.verify("Correct-horse-1", against: hash))
        #expect(try await !hasher.verify("Correct-horse-2", against: hash))
    }

    @Test func configuration() throws {
        let defaults = try AuthConfig(settings: SignupTests.settings([:]))
        #expect(defaults.passwordHashPriority == .normal)
        #expect(defaults.passwordHashMaxPending == 64)
        let set = try AuthConfig(settings: SignupTests.settings(["PASSWORD_HASH_PRIORITY": "low", "PASSWORD_HASH_MAX_PENDING": "5"]))
        #expect(set.passwordHashPriority == .low)
        #expect(set.passwordHashMaxPending == 5)
        #expect(throws: ConfigurationError.self) { try AuthConfig(settings: SignupTests.settings(["PASSWORD_HASH_PRIORITY": "fast"])) }
        #expect(throws: ConfigurationError.self) { try AuthConfig(settings: SignupTests.settings(["PASSWORD_HASH_MAX_PENDING": "0"])) }
    }
}
