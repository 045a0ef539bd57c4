import Foundation
import HTTPTypes
import LocalPostgres
import Logging
import NIOCore
import NIOHTTP1
import ServiceCore
import TestSupport
import Testing

@testable import AuthApp

#if canImport(Glibc)
import Glibc
#endif

/// Password hashes in a worker process of their own (`PASSWORD_HASH_ISOLATION=process`): the real
/// `auth` executable started as the worker, nothing mocked.
@Suite("auth hashing worker")
struct HashingWorkerTests {
    /// The `auth` executable of this build (it serves the worker argument; the test runner does not).
    static var authExecutable: String { "\(ChildServices.binDirectory)/auth" }

    /// bcrypt in this process, as `PASSWORD_HASH_ISOLATION=threads` runs it.
    static let inProcess = HashingThreads(priority: .normal, maxPending: 64, logger: Logger(label: "test.hashing-threads"))

    static func worker(maxPending: Int = 64, executable: String = authExecutable, stallTimeout: Duration = .seconds(AuthConfig.defaultPasswordHashStallSeconds)) -> HashingWorker {
        HashingWorker(
            executable: executable, priority: .low, maxPending: maxPending, threads: 2, stallTimeout: stallTimeout,
            logger: Logger(label: "test.hashing-worker")
        )
    }

    /// The error a hash that must be refused ends with; an issue (and nil) if it is answered instead.
    static func refusal(_ hash: () async throws -> String, _ comment: Comment) async throws -> AppError? {
        do {
            _ = try await hash()
            Issue.record(comment)
            return nil
        } catch let error as AppError {
            return error
        }
    }

    /// Fields of `/proc/<pid>/stat` after the command name: `fields[n - 3]` is field n.
    static func statFields(_ path: String) -> [Substring]? {
        guard let stat = try? String(contentsOfFile: path, encoding: .utf8), let end = stat.lastIndex(of: ")") else { return nil }
        return stat[stat.index(after: end)...].split(separator: " ")
    }

    /// Whether `pid` is gone (or a zombie nobody reaped), waiting at most `timeout`.
    static func ended(_ pid: pid_t, within timeout: Duration = .seconds(10)) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            guard let fields = statFields("/proc/\(pid)/stat") else { return true }
            if fields.first == "Z" || fields.first == "X" { return true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    /// The pids of running workers started as `argv0` (a path of one test's own).
    static func workers(startedAs argv0: String) -> [pid_t] {
        let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.compactMap { pid_t($0) } ?? []
        return pids.filter { pid in
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            let arguments = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            return arguments.count > 1 && arguments[0] == argv0 && arguments[1] == HashingWorkerProcess.argument
                && statFields("/proc/\(pid)/stat")?.first != "Z"
        }
    }

    @Test func hashesAndChecksAsBcryptInThisProcessDoes() async throws {
        let worker = Self.worker()
        defer { worker.stop() }
        try await worker.start()
        let input = "c29tZSBwcmVoYXNoZWQgcGFzc3dvcmQgaW4gYmFzZTY0IQ=="
        // Hashed there, checked here; hashed here, checked there.
        let theirs = try await worker.hash(input, cost: 4)
        #expect(theirs.hasPrefix("$2b$04$") || theirs.hasPrefix("$2a$04$") || theirs.hasPrefix("$2y$04$"))
        #expect(try await Self.inProcess.verify(input, against: theirs))
        #expect(try await !Self.inProcess.verify(input + "x", against: theirs))
        let ours = try await Self.inProcess.hash(input, cost: 5)
        #expect(try await worker.verify(input, against: ours))
        #expect(try await !worker.verify("other", against: ours))
        // A malformed hash is a no, as in process.
        let malformed = "not-a-bcrypt-hash"
        #expect(try await worker.verify(input, against: malformed) == Self.inProcess.verify(input, against: malformed))

        // As sign-in uses it: prehashed hashes, legacy plain bcrypt, many at once.
        let hasher = PasswordHasher(cost: 4, runner: worker)
        let stored = try await hasher.hash("Correct-horse-1")
        #expect(stored.hasPrefix("sha256$"))
        #expect(try await hasher.verify("Correct-horse-1", against: stored))
        #expect(try await !hasher.verify("Correct-horse-2", against: stored))
        #expect(try await PasswordHasher(cost: 4).verify("Correct-horse-1", against: stored))
        #expect(try await hasher.verify("legacy-Passw0rd", against: Self.inProcess.hash("legacy-Passw0rd", cost: 4)))
        let answers = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<12 {
                group.addTask { try await hasher.verify(index.isMultiple(of: 2) ? "Correct-horse-1" : "wrong-\(index)", against: stored) }
            }
            return try await group.reduce(into: 0) { count, matched in count += matched ? 1 : 0 }
        }
        #expect(answers == 6)
        #expect(worker.inFlight == 0)
    }

    @Test func theWorkerIsInASessionOfItsOwnAtTheLowestPriority() async throws {
        #if os(Linux)
        let worker = Self.worker()
        defer { worker.stop() }
        let report = try await worker.start()
        let pid = try #require(worker.pid)
        #expect(report.pid == pid)
        // Its own session (and so its own autogroup): field 6 of /proc/<pid>/stat is its own pid.
        let fields = try #require(Self.statFields("/proc/\(pid)/stat"))
        #expect(fields[6 - 3] == Substring(String(pid)))
        #expect(fields[6 - 3] != Self.statFields("/proc/self/stat")![6 - 3])
        // Its autogroup at nice 19, when the kernel has autogroups (this process has one then too).
        if FileManager.default.fileExists(atPath: "/proc/self/autogroup") {
            let autogroup = try String(contentsOfFile: "/proc/\(pid)/autogroup", encoding: .utf8)
            #expect(autogroup.trimmingCharacters(in: .whitespacesAndNewlines).hasSuffix("nice 19"), "\(autogroup)")
            let ours = try String(contentsOfFile: "/proc/self/autogroup", encoding: .utf8)
            #expect(ours.split(separator: " ").first != autogroup.split(separator: " ").first)
        }
        // Every thread at nice 19 (field 19 of each /proc/<pid>/task/<tid>/stat).
        let tasks = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")
        #expect(tasks.count >= 3)  // the reader and two hashing threads
        for task in tasks {
            let thread = try #require(Self.statFields("/proc/\(pid)/task/\(task)/stat"))
            #expect(thread[19 - 3] == "19", "thread \(task) of the worker: nice \(thread[19 - 3])")
        }
        #expect(report.threads.allSatisfy { $0.nice == 19 })
        #expect(report.said.contains("2 hashing threads"))
        #endif
    }

    @Test func aKilledWorkerFailsItsHashesAtOnceAndTheNextHashStartsANewOne() async throws {
        let worker = Self.worker()
        defer { worker.stop() }
        try await worker.start()
        let first = try #require(worker.pid)
        // Cost 15 takes seconds: it is surely still hashing when the worker is killed.
        let clock = ContinuousClock()
        let started = clock.now
        let inFlight = Task { try await worker.hash("slow", cost: 15) }
        while worker.inFlight == 0 { try await Task.sleep(for: .milliseconds(5)) }
        try await Task.sleep(for: .milliseconds(100))
        kill(first, SIGKILL)
        let error = try await Self.refusal({ try await inFlight.value }, "a hash finished although its worker was killed")
        #expect(error?.status == .serviceUnavailable)
        #expect(error?.code == "HASHING_INTERRUPTED")
        #expect(error?.headers[.retryAfter] == "1")
        #expect(clock.now - started < .seconds(3), "the interrupted hash waited \(clock.now - started)")
        #expect(worker.inFlight == 0)
        // The next hash starts a new worker and is answered by it.
        let hash = try await worker.hash("after", cost: 4)
        #expect(try await Self.inProcess.verify("after", against: hash))
        let second = try #require(worker.pid)
        #expect(second != first)
        #expect(try await Self.ended(first))
    }

    // Without the check the stuck hash would wait forever: the limit makes that a failure, not a hang.
    @Test(.timeLimit(.minutes(1))) func aWorkerThatHoldsHashesWithoutAnsweringIsEndedAndReplaced() async throws {
        let worker = Self.worker(stallTimeout: .milliseconds(1500))
        defer { worker.stop() }
        try await worker.start()
        let first = try #require(worker.pid)
        // Idle for longer than the limit: nothing in hand, so nothing is overdue.
        try await Task.sleep(for: .seconds(2))
        #expect(worker.pid == first)
        // A pause shorter than the limit (the worker stopped, then let go on) is waited out.
        kill(first, SIGSTOP)
        let paused = Task { try await worker.hash("paused", cost: 4) }
        try await Task.sleep(for: .milliseconds(500))
        kill(first, SIGCONT)
        #expect(try await Self.inProcess.verify("paused", against: paused.value))
        #expect(worker.pid == first)
        // Stopped for good: alive, holding the hash, answering nothing. It is ended after the limit
        // and the hash fails as an interrupted one; the next hash gets a new worker.
        kill(first, SIGSTOP)
        let clock = ContinuousClock()
        let started = clock.now
        let error = try await Self.refusal({ try await worker.hash("stuck", cost: 4) }, "a hash finished although its worker was stopped")
        #expect(error?.status == .serviceUnavailable)
        #expect(error?.code == "HASHING_INTERRUPTED")
        let waited = clock.now - started
        #expect(waited >= .milliseconds(1400) && waited < .seconds(8), "the stuck hash failed after \(waited)")
        #expect(try await Self.ended(first))
        let hash = try await worker.hash("after", cost: 4)
        #expect(try await Self.inProcess.verify("after", against: hash))
        #expect(try #require(worker.pid) != first)
    }

    @Test func theWorkerEndsWhenItsParentClosesThePipes() async throws {
        // Started by hand with the same pipes HashingWorker uses, to close them without a signal.
        var requests: [Int32] = [-1, -1]
        var answers: [Int32] = [-1, -1]
        #expect(pipe(&requests) == 0)
        #expect(pipe(&answers) == 0)
        for descriptor in requests + answers { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
        let pid = try ChildProcess.spawn(
            [Self.authExecutable, HashingWorkerProcess.argument, "--threads", "1", "--parent", String(getpid())], input: requests[0], output: answers[1]
        )
        close(requests[0])
        close(answers[1])
        defer { close(answers[0]) }
        // Its first frame says it is ready.
        var buffer = ByteBufferAllocator().buffer(capacity: 512)
        var chunk = [UInt8](repeating: 0, count: 512)
        var ready: HashingWorkerWire.Answer?
        while ready == nil {
            let count = chunk.withUnsafeMutableBytes { read(answers[0], $0.baseAddress, $0.count) }
            try #require(count > 0, "the worker closed its output before it was ready")
            buffer.writeBytes(chunk[0..<count])
            ready = try HashingWorkerWire.readAnswer(from: &buffer)
        }
        guard case .ready(let said) = ready?.outcome else {
            Issue.record("first frame was \(String(describing: ready))")
            return
        }
        #expect(said.contains("1 hashing threads"))
        close(requests[1])
        // It exits by itself, with status 0 (not killed).
        #expect(ChildProcess.wait(pid) == 0)
    }

    @Test func stoppingTheServiceEndsTheWorkerAndRefusesLaterHashes() async throws {
        let worker = Self.worker()
        try await worker.start()
        let pid = try #require(worker.pid)
        worker.stop()
        #expect(try await Self.ended(pid))
        await #expect(throws: AppError.self) { try await worker.hash("late", cost: 4) }
    }

    @Test func aWorkerThatCannotStartIsRefusedWithBackoff() async throws {
        let worker = Self.worker(executable: "/nonexistent/auth")
        await #expect(throws: AppError.self) { try await worker.start() }
        let error = try await Self.refusal({ try await worker.hash("x", cost: 4) }, "hashed without a worker")
        #expect(error?.status == .serviceUnavailable)
        #expect(error?.code == "HASHING_UNAVAILABLE")
        #expect(HashingWorker.backoff(after: 1) == .zero)
        #expect(HashingWorker.backoff(after: 2) == .milliseconds(250))
        #expect(HashingWorker.backoff(after: 3) == .milliseconds(500))
        #expect(HashingWorker.backoff(after: 40) == .seconds(10))
    }

    @Test func theBoundOnHashesInFlightHoldsThroughTheWorker() async throws {
        let worker = Self.worker(maxPending: 1)
        defer { worker.stop() }
        try await worker.start()
        let slow = Task { try await worker.hash("slow", cost: 10) }
        while worker.inFlight == 0 { try await Task.sleep(for: .milliseconds(5)) }
        #expect(!worker.hasRoom)
        let error = try await Self.refusal({ try await worker.hash("one more", cost: 4) }, "a second hash was taken beyond the bound")
        #expect(error?.code == "HASHING_BUSY")
        #expect(try await slow.value.hasPrefix("$2"))
        #expect(worker.hasRoom)
    }

    @Test func ownerCreationAndLoginGoThroughTheWorker() async throws {
        // A path of this test's own for the executable, so its worker is told from other tests'.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("hashing-worker-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let executable = directory + "/auth"
        try FileManager.default.createSymbolicLink(atPath: executable, withDestinationPath: Self.authExecutable)

        try await TestStack.with(.auth, overrides: ["PASSWORD_HASH_WORKER_EXECUTABLE": executable]) { stack in
            let started = Self.workers(startedAs: executable)
            #expect(started.count == 1)
            let email = Fixtures.uniqueEmail()
            #expect(try await Fixtures.createOwner(authURL: stack.url(.auth), email: email).status == 201)
            let login = try await TestHTTP.send(.POST, stack.url(.auth) + "/api/auth/login", json: ["email": email, "password": Fixtures.password])
            #expect(login.status == 200)
            let wrong = try await TestHTTP.send(.POST, stack.url(.auth) + "/api/auth/login", json: ["email": email, "password": "Wrong-passw0rd"])
            #expect(wrong.status == 401)

            // Kill it: the next sign-in starts a new worker and is checked there. The service learns of
            // the death from the worker's pipe, which can come a moment after the process is gone: a
            // sign-in sent in that moment is answered 503 HASHING_INTERRUPTED ("try again"), once.
            for pid in started { kill(pid, SIGKILL) }
            for pid in started { #expect(try await Self.ended(pid)) }
            var again = try await TestHTTP.send(.POST, stack.url(.auth) + "/api/auth/login", json: ["email": email, "password": Fixtures.password])
            if again.status == 503 {
                #expect(try again.error().code == "HASHING_INTERRUPTED")
                again = try await TestHTTP.send(.POST, stack.url(.auth) + "/api/auth/login", json: ["email": email, "password": Fixtures.password])
            }
            #expect(again.status == 200)
            let replaced = Self.workers(startedAs: executable)
            #expect(replaced.count == 1)
            #expect(Set(replaced).isDisjoint(with: started))
        }
        // The service stopped its worker as it shut down.
        let deadline = ContinuousClock.now + .seconds(10)
        while !Self.workers(startedAs: executable).isEmpty, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(Self.workers(startedAs: executable).isEmpty)
    }

    @Test func configuration() throws {
        let defaults = try AuthConfig(settings: SignupTests.settings([:]))
        #expect(defaults.passwordHashIsolation == .process)
        #expect(defaults.passwordHashWorkerExecutable == nil)
        let set = try AuthConfig(
            settings: SignupTests.settings(["PASSWORD_HASH_ISOLATION": "threads", "PASSWORD_HASH_WORKER_EXECUTABLE": "/usr/local/bin/auth"])
        )
        #expect(set.passwordHashIsolation == .threads)
        #expect(set.passwordHashWorkerExecutable == "/usr/local/bin/auth")
        #expect(throws: ConfigurationError.self) { try AuthConfig(settings: SignupTests.settings(["PASSWORD_HASH_ISOLATION": "container"])) }
        #expect(defaults.passwordHashStallSeconds == 60)
        #expect(try AuthConfig(settings: SignupTests.settings(["PASSWORD_HASH_STALL_SECONDS": "5"])).passwordHashStallSeconds == 5)
        #expect(throws: ConfigurationError.self) { try AuthConfig(settings: SignupTests.settings(["PASSWORD_HASH_STALL_SECONDS": "0"])) }
    }
}
