#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import HTTPTypes
import LocalPostgres
import Logging
import NIOCore
import NIOPosix
import ServiceCore
import ServiceLifecycle
import Synchronization

/// Password hashes in a worker process (`PASSWORD_HASH_ISOLATION=process`, the default): this
/// executable started again as `HashingWorkerProcess`, in a session and autogroup of its own at
/// the lowest priority.
///
/// Hashing threads inside the serving process competed with it however low they were set: at
/// normal priority they shared the suite's autogroup with the event loops, and at `SCHED_IDLE` an
/// event loop sometimes waited for a lock (the allocator's, the runtime's) held by a hashing thread
/// the kernel did not schedule (bench/README.md). Here no thread of the serving process ever waits
/// for a hashing thread: requests go down a pipe and answers come back on the event loop
/// (`NIOPipeBootstrap`), matched by request id.
///
/// The worker is started when the service is built and stopped when it shuts down (`run`). When
/// it dies, the hashes it had in hand fail at once (503 `HASHING_INTERRUPTED`) and the next hash
/// starts a new one; after failures in a row, starting again waits (`backoff`), and hashes
/// meanwhile are refused (503 `HASHING_UNAVAILABLE`). A worker that stays alive but answers nothing
/// for `stallTimeout` while it holds requests (`PASSWORD_HASH_STALL_SECONDS`) is ended the same way.
final class HashingWorker: BcryptRunner, Service {
    /// The executable started as the worker (`/proc/self/exe`: this one).
    let executable: String
    let priority: PasswordHashPriority
    let threads: Int
    /// Silence with requests in hand after which the worker is taken for stuck and ended.
    let stallTimeout: Duration
    let logger: Logger
    private let admission: HashAdmission
    private let state = Mutex(State())

    private struct State {
        var phase = Phase.idle
        /// Starts that failed and workers that died, in a row (none answered in between).
        var failures = 0
        var lastFailure: ContinuousClock.Instant?
        var stopped = false
    }

    private enum Phase {
        case idle
        case starting(Task<WorkerConnection, any Error>)
        case running(WorkerConnection)
    }

    /// What the worker is, as the kernel reports it (`/proc/<pid>/…`) and as the worker said.
    struct Report: Sendable, CustomStringConvertible {
        var pid: pid_t
        /// Field 6 of `/proc/<pid>/stat`; the worker's own pid when it leads a session of its own.
        var session: Int?
        /// `/proc/<pid>/autogroup`, e.g. `/autogroup-42 nice 19`.
        var autogroup: String?
        /// Policy and nice of each of its threads (fields 41 and 19 of `/proc/<pid>/task/<tid>/stat`).
        var threads: [HashingThreads.Applied]
        /// The worker's own account of itself.
        var said: String

        var description: String {
            let kinds = Dictionary(grouping: threads.map(\.description), by: { $0 }).map { "\($0.value.count)× \($0.key)" }.sorted()
            return "pid \(pid), session \(session.map(String.init) ?? "?"), autogroup '\(autogroup ?? "none")', threads: \(kinds.joined(separator: ", "))"
        }
    }

    init(
        executable: String, priority: PasswordHashPriority, maxPending: Int, threads: Int = System.coreCount,
        stallTimeout: Duration = .seconds(AuthConfig.defaultPasswordHashStallSeconds), logger: Logger
    ) {
        self.executable = executable
        self.priority = priority
        self.threads = threads
        self.stallTimeout = stallTimeout
        self.admission = HashAdmission(maxPending: maxPending)
        self.logger = logger
    }

    var hasRoom: Bool { admission.hasRoom }

    var inFlight: Int { admission.inFlight }

    static var interrupted: AppError {
        AppError(
            .serviceUnavailable, code: "HASHING_INTERRUPTED", detail: "The password check was interrupted; try again",
            headers: [.retryAfter: "1"]
        )
    }

    static var unavailable: AppError {
        AppError(
            .serviceUnavailable, code: "HASHING_UNAVAILABLE", detail: "Passwords cannot be checked at the moment; try again shortly",
            headers: [.retryAfter: "1"]
        )
    }

    /// The wait before starting again after `failures` in a row: none after the first (a worker
    /// that died is replaced by the next hash), then 0.25 s doubling up to 10 s.
    static func backoff(after failures: Int) -> Duration {
        failures <= 1 ? .zero : min(.seconds(10), .milliseconds(250) * (1 << min(failures - 2, 6)))
    }

    func hash(_ input: String, cost: UInt8) async throws -> String {
        switch try await perform(.hash(input: input, cost: cost)) {
        case .hashed(let hash): return hash
        case let other: throw unexpected(other)
        }
    }

    func verify(_ input: String, against hash: String) async throws -> Bool {
        switch try await perform(.verify(input: input, hash: hash)) {
        case .verified(let matches): return matches
        case let other: throw unexpected(other)
        }
    }

    private func perform(_ operation: HashingWorkerWire.Operation) async throws -> HashingWorkerWire.Outcome {
        try await admission.admit {
            var retried = false
            while true {
                let connection = try await connection()
                do {
                    let outcome = try await connection.send(operation)
                    state.withLock { $0.failures = 0 }
                    return outcome
                } catch is WorkerGone where !retried {
                    // It never reached that worker (already dead, its end not yet seen): a new one gets it.
                    retried = true
                    retire(connection)
                } catch is WorkerGone {
                    throw Self.interrupted
                }
            }
        }
    }

    /// Forgets a worker whose pipe is broken, before its end is reported (`ended` counts it).
    private func retire(_ connection: WorkerConnection) {
        state.withLock { state in
            if case .running(let current) = state.phase, current === connection { state.phase = .idle }
        }
        connection.terminate()
    }

    private func unexpected(_ outcome: HashingWorkerWire.Outcome) -> AppError {
        logger.error("password hashing worker answered out of turn", metadata: ["answer": "\(outcome)"])
        return Self.unavailable
    }

    /// Starts the worker now (when the service is built) and says what it became.
    @discardableResult
    func start() async throws -> Report {
        let connection = try await connection()
        return Self.observe(connection.pid, said: connection.said)
    }

    /// The running worker's pid, if one runs.
    var pid: pid_t? {
        state.withLock { state in
            if case .running(let connection) = state.phase { return connection.pid }
            return nil
        }
    }

    /// The running worker, or a new one (one start at a time; every caller waits for it).
    private func connection() async throws -> WorkerConnection {
        enum Next {
            case use(WorkerConnection)
            case wait(Task<WorkerConnection, any Error>)
        }
        let next: Next = try state.withLock { state in
            if state.stopped { throw Self.unavailable }
            switch state.phase {
            case .running(let connection):
                return .use(connection)
            case .starting(let task):
                return .wait(task)
            case .idle:
                if let last = state.lastFailure, ContinuousClock.now < last + Self.backoff(after: state.failures) {
                    throw Self.unavailable
                }
                let task = Task { try await self.launch() }
                state.phase = .starting(task)
                return .wait(task)
            }
        }
        switch next {
        case .use(let connection): return connection
        case .wait(let task): return try await task.value
        }
    }

    private func launch() async throws -> WorkerConnection {
        let connection: WorkerConnection
        do {
            connection = try await WorkerConnection.start(
                executable: executable, arguments: ["--priority", priority.rawValue, "--parent", String(getpid()), "--threads", String(threads)],
                stallTimeout: stallTimeout, logger: logger
            ) { [weak self] connection in self?.ended(connection) }
        } catch {
            let failures = state.withLock { state in
                state.phase = .idle
                state.failures += 1
                state.lastFailure = .now
                return state.failures
            }
            logger.warning(
                "password hashing worker did not start",
                metadata: ["executable": "\(executable)", "error": "\(error)", "retry_after": "\(Self.backoff(after: failures))"]
            )
            throw Self.unavailable
        }
        let kept = state.withLock { state in
            guard !state.stopped else { return false }
            state.phase = .running(connection)
            return true
        }
        guard kept else {
            connection.terminate()
            throw Self.unavailable
        }
        logger.info(
            "password hashing worker started",
            metadata: ["worker": "\(Self.observe(connection.pid, said: connection.said))", "executable": "\(executable)"]
        )
        return connection
    }

    /// The worker's pipe closed: it died, or we stopped it. Its hashes have already failed.
    private func ended(_ connection: WorkerConnection) {
        let (stopped, failures) = state.withLock { state in
            if case .running(let current) = state.phase, current === connection { state.phase = .idle }
            if !state.stopped {
                state.failures += 1
                state.lastFailure = .now
            }
            return (state.stopped, state.failures)
        }
        let logger = self.logger
        let pid = connection.pid
        WorkerConnection.spawner.submit { _ in
            kill(pid, SIGKILL)
            let status = ChildProcess.wait(pid)
            if !stopped {
                logger.error(
                    "password hashing worker ended; the hashes it had in hand failed (503), the next one starts a new worker",
                    metadata: ["pid": "\(pid)", "status": "\(status)", "retry_after": "\(Self.backoff(after: failures))"]
                )
            }
        }
    }

    /// Stops the worker when the service shuts down (after the HTTP server: services stop in
    /// reverse order, and auth lists this one first).
    func run() async throws {
        try? await gracefulShutdown()
        stop()
    }

    /// Stops the worker (its pipes close, then SIGKILL); later hashes are refused.
    func stop() {
        let phase = state.withLock { state in
            state.stopped = true
            defer { state.phase = .idle }
            return state.phase
        }
        switch phase {
        case .running(let connection): connection.terminate()
        case .starting(let task): task.cancel()
        case .idle: break
        }
    }

    /// What the kernel says of `pid`: its session, autogroup and each thread's policy and nice.
    static func observe(_ pid: pid_t, said: String = "") -> Report {
        func statFields(_ path: String) -> [Substring]? {
            guard let stat = try? String(contentsOfFile: path, encoding: .utf8), let end = stat.lastIndex(of: ")") else { return nil }
            // Fields after the command name (which may hold spaces): rest[0] is field 3.
            return stat[stat.index(after: end)...].split(separator: " ")
        }
        let session = statFields("/proc/\(pid)/stat").flatMap { $0.count > 3 ? Int($0[6 - 3]) : nil }
        let autogroup = (try? String(contentsOfFile: "/proc/\(pid)/autogroup", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        let threads = tasks.sorted().compactMap { task -> HashingThreads.Applied? in
            guard let fields = statFields("/proc/\(pid)/task/\(task)/stat"), fields.count > 41 - 3,
                let nice = Int32(fields[19 - 3]), let policy = Int32(fields[41 - 3])
            else { return nil }
            return HashingThreads.Applied(policy: policy, nice: nice)
        }
        return Report(pid: pid, session: session, autogroup: autogroup, threads: threads, said: said)
    }
}
