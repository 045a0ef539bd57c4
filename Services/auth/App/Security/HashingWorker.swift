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
/// meanwhile are refused (503 `HASHING_UNAVAILABLE`).
final class HashingWorker: BcryptRunner, Service {
    /// The executable started as the worker (`/proc/self/exe`: this one).
    let executable: String
    let priority: PasswordHashPriority
    let threads: Int
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

    init(executable: String, priority: PasswordHashPriority, maxPending: Int, threads: Int = System.coreCount, logger: Logger) {
        self.executable = executable
        self.priority = priority
        self.threads = threads
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
                executable: executable, arguments: ["--priority", priority.rawValue, "--parent", String(getpid()), "--threads", String(threads)]
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

/// One running worker as the parent sees it: its pid, the pipe channel, and the callers waiting
/// for answers, by request id.
final class WorkerConnection: Sendable {
    /// Workers are started (and reaped) from this thread alone: `PR_SET_PDEATHSIG` fires when the
    /// thread that started the worker ends, and this one lives as long as the process.
    static let spawner: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        return pool
    }()

    let pid: pid_t
    /// The worker's own account of itself (its `ready` frame).
    let said: String
    private let channel: any Channel
    private let inbox: WorkerInbox
    private let nextID = Atomic<UInt64>(1)

    private init(pid: pid_t, said: String, channel: any Channel, inbox: WorkerInbox) {
        self.pid = pid
        self.said = said
        self.channel = channel
        self.inbox = inbox
    }

    /// Starts `executable` as the worker and waits (at most `readyTimeout`) for its `ready` frame.
    static func start(
        executable: String, arguments: [String], readyTimeout: Duration = .seconds(30),
        ended: @escaping @Sendable (WorkerConnection) -> Void
    ) async throws -> WorkerConnection {
        // A write to a worker that just died fails with EPIPE: NIO ignores SIGPIPE process-wide on Linux.
        let (pid, input, output) = try await spawner.runIfActive {
            try Self.spawn([executable, HashingWorkerProcess.argument] + arguments)
        }
        let inbox = WorkerInbox()
        let channel: any Channel
        do {
            channel = try await NIOPipeBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandlers(
                            ByteToMessageHandler(WorkerAnswerDecoder()), WorkerAnswerHandler(inbox: inbox)
                        )
                    }
                }
                .takingOwnershipOfDescriptors(input: input, output: output)
                .get()
        } catch {
            close(input)
            close(output)
            _ = try? await spawner.runIfActive {
                kill(pid, SIGKILL)
                return ChildProcess.wait(pid)
            }
            throw error
        }
        // Not answering in time counts as dying: the pipe is closed and the wait below fails.
        let timeout = Task {
            try await Task.sleep(for: readyTimeout)
            kill(pid, SIGKILL)
            channel.close(promise: nil)
        }
        defer { timeout.cancel() }
        let said: String
        do {
            said = try await inbox.ready()
        } catch {
            kill(pid, SIGKILL)
            channel.close(promise: nil)
            _ = try? await spawner.runIfActive { ChildProcess.wait(pid) }
            throw WorkerStartFailure(description: "the worker (pid \(pid)) ended or stayed silent before it was ready")
        }
        let connection = WorkerConnection(pid: pid, said: said, channel: channel, inbox: inbox)
        inbox.onEnd { ended(connection) }
        return connection
    }

    /// Two pipes (close-on-exec here; the child gets its ends as standard input and output), and
    /// the child; returns the pid and the parent's ends (read answers, write requests).
    private static func spawn(_ arguments: [String]) throws -> (pid: pid_t, input: Int32, output: Int32) {
        var requests: [Int32] = [-1, -1]
        var answers: [Int32] = [-1, -1]
        guard pipe(&requests) == 0 else { throw WorkerStartFailure(description: "pipe: \(String(cString: strerror(errno)))") }
        guard pipe(&answers) == 0 else {
            close(requests[0])
            close(requests[1])
            throw WorkerStartFailure(description: "pipe: \(String(cString: strerror(errno)))")
        }
        for descriptor in requests + answers { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
        defer {
            close(requests[0])
            close(answers[1])
        }
        do {
            let pid = try ChildProcess.spawn(arguments, input: requests[0], output: answers[1])
            return (pid, answers[0], requests[1])
        } catch {
            close(requests[1])
            close(answers[0])
            throw error
        }
    }

    /// Sends one request and waits for its answer; fails with `HashingWorker.interrupted` when the
    /// worker ends first.
    func send(_ operation: HashingWorkerWire.Operation) async throws -> HashingWorkerWire.Outcome {
        let id = nextID.wrappingAdd(1, ordering: .relaxed).oldValue
        var buffer = channel.allocator.buffer(capacity: 128)
        HashingWorkerWire.write(HashingWorkerWire.Request(id: id, operation: operation), to: &buffer)
        let frame = buffer
        return try await withCheckedThrowingContinuation { continuation in
            guard inbox.expect(id, continuation) else { return }
            channel.writeAndFlush(frame).whenComplete { [inbox] result in
                switch result {
                case .success: inbox.written(id)
                case .failure: inbox.fail(id, WorkerGone())
                }
            }
        }
    }

    /// Ends the worker: SIGKILL and the pipes closed (its waiting callers fail as the channel goes).
    /// The signal is sent only while its end has not been seen: after that its pid is reaped and
    /// may belong to another process.
    func terminate() {
        let pid = self.pid
        inbox.whileOpen { kill(pid, SIGKILL) }
        channel.close(promise: nil)
    }
}

struct WorkerStartFailure: Error, CustomStringConvertible {
    var description: String
}

/// A request that never reached the worker: it had ended, or the write to it failed.
struct WorkerGone: Error {}

/// The callers waiting for a worker's answers, and what happens when it ends.
final class WorkerInbox: Sendable {
    private struct State {
        var waiting: [UInt64: CheckedContinuation<HashingWorkerWire.Outcome, any Error>] = [:]
        /// Requests whose bytes are in the worker's pipe: only these were in its hands when it ends.
        var written: Set<UInt64> = []
        var ended = false
        var ready: CheckedContinuation<String, any Error>?
        var said: String?
        var onEnd: (@Sendable () -> Void)?
    }

    private let state = Mutex(State())

    /// Waits for the worker's `ready` frame.
    func ready() async throws -> String {
        try await withCheckedThrowingContinuation { continuation in
            let outcome: Result<String, any Error>? = state.withLock { state in
                if let said = state.said { return .success(said) }
                if state.ended { return .failure(HashingWorker.interrupted) }
                state.ready = continuation
                return nil
            }
            if let outcome { continuation.resume(with: outcome) }
        }
    }

    /// Runs `body` (under the lock) unless the worker's end has been seen.
    func whileOpen(_ body: () -> Void) {
        state.withLock { state in
            if !state.ended { body() }
        }
    }

    /// Runs `action` once the worker has ended (at once if it already has).
    func onEnd(_ action: @escaping @Sendable () -> Void) {
        let ended = state.withLock { state in
            if !state.ended { state.onEnd = action }
            return state.ended
        }
        if ended { action() }
    }

    /// Registers a caller; false (and the caller already failed with `WorkerGone`) when the worker has ended.
    func expect(_ id: UInt64, _ continuation: CheckedContinuation<HashingWorkerWire.Outcome, any Error>) -> Bool {
        let accepted = state.withLock { state in
            if state.ended { return false }
            state.waiting[id] = continuation
            return true
        }
        if !accepted { continuation.resume(throwing: WorkerGone()) }
        return accepted
    }

    func fail(_ id: UInt64, _ error: any Error) {
        state.withLock { state in
            state.written.remove(id)
            return state.waiting.removeValue(forKey: id)
        }?.resume(throwing: error)
    }

    func written(_ id: UInt64) {
        state.withLock { state in
            if state.waiting[id] != nil { state.written.insert(id) }
        }
    }

    func deliver(_ answer: HashingWorkerWire.Answer) {
        if case .ready(let said) = answer.outcome {
            let waiter = state.withLock { state in
                state.said = said
                defer { state.ready = nil }
                return state.ready
            }
            waiter?.resume(returning: said)
            return
        }
        state.withLock { state in
            state.written.remove(answer.id)
            return state.waiting.removeValue(forKey: answer.id)
        }?.resume(returning: answer.outcome)
    }

    /// The worker's pipe closed: every waiting caller fails now, those whose request it had with
    /// `HashingWorker.interrupted`, the others (whose write failed with it) with `WorkerGone`.
    func end() {
        typealias Waiting = [(CheckedContinuation<HashingWorkerWire.Outcome, any Error>, Bool)]
        let (waiting, ready, action): (Waiting, CheckedContinuation<String, any Error>?, (@Sendable () -> Void)?) = state.withLock { state in
            if state.ended { return ([], nil, nil) }
            state.ended = true
            defer {
                state.waiting = [:]
                state.written = []
                state.ready = nil
                state.onEnd = nil
            }
            return (state.waiting.map { ($0.value, state.written.contains($0.key)) }, state.ready, state.onEnd)
        }
        // The worker is forgotten first, so a caller woken below already gets a new one.
        action?()
        for (continuation, written) in waiting { continuation.resume(throwing: written ? HashingWorker.interrupted : WorkerGone()) }
        ready?.resume(throwing: HashingWorker.interrupted)
    }
}

/// Whole answer frames off the worker's standard output.
struct WorkerAnswerDecoder: ByteToMessageDecoder {
    typealias InboundOut = HashingWorkerWire.Answer

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let answer = try HashingWorkerWire.readAnswer(from: &buffer) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(answer))
        return .continue
    }
}

/// Hands each answer to its caller; the pipe closing (or garbage on it) ends the worker.
final class WorkerAnswerHandler: ChannelInboundHandler {
    typealias InboundIn = HashingWorkerWire.Answer

    private let inbox: WorkerInbox

    init(inbox: WorkerInbox) {
        self.inbox = inbox
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        inbox.deliver(unwrapInboundIn(data))
    }

    func channelInactive(context: ChannelHandlerContext) {
        inbox.end()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
