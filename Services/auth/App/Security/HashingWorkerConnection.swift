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
    ///
    /// With `stallTimeout`, a worker that holds requests but answers none of them for that long is
    /// taken for stuck (alive but not answering: stopped, deadlocked) and ended, as a dead one is:
    /// its hashes fail with 503 `HASHING_INTERRUPTED` and the next hash starts a new worker. A worker
    /// that is only starved still answers now and then, which resets the clock.
    static func start(
        executable: String, arguments: [String], readyTimeout: Duration = .seconds(30), stallTimeout: Duration? = nil,
        logger: Logger? = nil, ended: @escaping @Sendable (WorkerConnection) -> Void
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
        if let stallTimeout { connection.watch(stallTimeout: stallTimeout, logger: logger) }
        return connection
    }

    /// Checks a few times per `stallTimeout` whether the worker stopped answering, on the pipe's
    /// event loop; ends it if so. The check stops with the channel.
    private func watch(stallTimeout: Duration, logger: Logger?) {
        let interval = min(max(stallTimeout / 4, .milliseconds(50)), .seconds(5))
        let (seconds, attoseconds) = interval.components
        let delay = TimeAmount.nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
        let check = channel.eventLoop.scheduleRepeatedTask(initialDelay: delay, delay: delay) { [self] task in
            guard let silent = inbox.silence(longerThan: stallTimeout) else { return }
            task.cancel()
            logger?.error(
                "password hashing worker holds requests but answered none for too long; ending it",
                metadata: ["pid": "\(pid)", "silent_for": "\(silent)", "stall_timeout": "\(stallTimeout)"]
            )
            terminate()
        }
        channel.closeFuture.whenComplete { _ in check.cancel() }
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
        /// Since when the worker has had requests in hand without answering one (nil: none in hand).
        var silentSince: ContinuousClock.Instant?
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
            if state.written.isEmpty { state.silentSince = nil }
            return state.waiting.removeValue(forKey: id)
        }?.resume(throwing: error)
    }

    func written(_ id: UInt64) {
        state.withLock { state in
            guard state.waiting[id] != nil else { return }
            state.written.insert(id)
            if state.silentSince == nil { state.silentSince = .now }
        }
    }

    /// How long the worker has held requests without answering any, if longer than `limit`.
    func silence(longerThan limit: Duration) -> Duration? {
        state.withLock { state in
            guard !state.ended, !state.written.isEmpty, let since = state.silentSince else { return nil }
            let silent = ContinuousClock.now - since
            return silent > limit ? silent : nil
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
            // An answer is progress: the clock restarts for what is still in hand.
            state.silentSince = state.written.isEmpty ? nil : .now
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
