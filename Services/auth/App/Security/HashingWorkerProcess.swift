#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import Foundation
import HummingbirdBcrypt
import NIOCore
import Synchronization

/// The hashing worker's own side: what `auth` (or `suite`) does when `HashingWorker` starts it
/// again as `<executable> auth-password-hash-worker …`.
///
/// It leaves the parent's session (`setsid`: a session of its own is an autogroup of its own),
/// lowers that autogroup to nice 19 (`/proc/self/autogroup`, allowed unprivileged) and every one
/// of its threads to nice 19 (or `SCHED_IDLE` with `--priority idle`), so the kernel gives the
/// serving process, PostgreSQL and everything else the CPU first, with or without autogroups
/// (in a container the thread nice values do it). Requests come on standard input; a thread
/// per core hashes; answers go out on standard output under a lock. It ends when its standard
/// input ends (the parent closed the pipe or died) and, via `PR_SET_PDEATHSIG`, when the parent
/// dies.
package enum HashingWorkerProcess {
    /// The first argument that makes an executable the hashing worker.
    static let argument = "auth-password-hash-worker"

    private static let mainServesWorker = Atomic<Bool>(false)

    /// Whether this executable's main hands the worker argument to `serveIfRequested` (`auth`
    /// and `suite` do; a test runner does not, so it must name an executable that does).
    static var servesWorker: Bool { mainServesWorker.load(ordering: .relaxed) }

    /// Call first in main, before anything else: when this process was started as the hashing
    /// worker it serves and never returns; otherwise it returns at once.
    package static func serveIfRequested(_ arguments: [String] = CommandLine.arguments) {
        mainServesWorker.store(true, ordering: .relaxed)
        guard arguments.count >= 2, arguments[1] == argument else { return }
        var priority = PasswordHashPriority.low
        var parent: pid_t?
        var threads = System.coreCount
        var options = arguments.dropFirst(2).makeIterator()
        while let option = options.next() {
            let value = options.next() ?? ""
            switch option {
            case "--priority": priority = PasswordHashPriority(rawValue: value) ?? .low
            case "--parent": parent = pid_t(value)
            case "--threads": threads = max(1, Int(value) ?? threads)
            default: fail("unknown option \(option)")
            }
        }
        serve(priority: priority == .normal ? .low : priority, parent: parent, threads: threads)
    }

    private static func serve(priority: PasswordHashPriority, parent: pid_t?, threads: Int) -> Never {
        let session = setsid()
        setParentDeathSignal()
        // The parent may have gone before the death signal was asked for.
        if let parent, getppid() != parent { exit(0) }
        // Answers go to a copy of standard output; standard output itself becomes standard error,
        // so nothing printed by accident can enter the protocol.
        let answers = dup(1)
        guard answers >= 0, dup2(2, 1) >= 0 else { fail("cannot set up its output") }
        let autogroup = lowerAutogroup()
        _ = HashingThreads.apply(priority)

        let queue = WorkQueue()
        let writer = AnswerWriter(descriptor: answers)
        let started = StartedThreads()
        for _ in 0..<threads {
            Thread {
                _ = HashingThreads.apply(priority)
                started.add(HashingThreads.current().description)
                while true {
                    let request = queue.take()
                    writer.send(HashingWorkerWire.Answer(id: request.id, outcome: outcome(of: request.operation)))
                }
            }.start()
        }
        let kinds = Set(started.wait(for: threads)).sorted().joined(separator: "; ")
        let report = "session \(session == -1 ? "unchanged (setsid failed)" : String(session)), autogroup \(autogroup), \(threads) hashing threads: \(kinds)"
        writer.send(HashingWorkerWire.Answer(id: 0, outcome: .ready(report)))
        readRequests(into: queue)
    }

    private static func outcome(of operation: HashingWorkerWire.Operation) -> HashingWorkerWire.Outcome {
        switch operation {
        case .hash(let input, let cost):
            // bcrypt traps on a cost outside its range; the parent never sends one (BCRYPT_COST is 4-31).
            guard (4...31).contains(cost) else { return .failed("cost \(cost) is outside 4-31") }
            return .hashed(Bcrypt.hash(input, cost: cost))
        case .verify(let input, let hash):
            return .verified(Bcrypt.verify(input, hash: hash))
        }
    }

    /// Reads standard input until it ends (the parent is gone or done with us), then exits.
    private static func readRequests(into queue: WorkQueue) -> Never {
        var buffer = ByteBufferAllocator().buffer(capacity: 4096)
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
            if count == 0 { exit(0) }
            if count < 0 {
                if errno == EINTR { continue }
                fail("reading its input: \(String(cString: strerror(errno)))")
            }
            buffer.writeBytes(chunk[0..<count])
            do {
                while let request = try HashingWorkerWire.readRequest(from: &buffer) { queue.put(request) }
            } catch {
                fail("\(error)")
            }
            buffer.discardReadBytes()
        }
    }

    /// Writes 19 to `/proc/self/autogroup` (the nice value of this session's autogroup) and says
    /// what the kernel then holds, as it reads back.
    private static func lowerAutogroup() -> String {
        let path = "/proc/self/autogroup"
        let descriptor = open(path, O_WRONLY)
        if descriptor >= 0 {
            _ = "19".withCString { write(descriptor, $0, 2) }
            close(descriptor)
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return "none (no \(path))" }
        return "'\(text.trimmingCharacters(in: .whitespacesAndNewlines))'"
    }

    private typealias Prctl = @convention(c) (Int32, UInt, UInt, UInt, UInt) -> Int32

    /// `prctl(PR_SET_PDEATHSIG, SIGKILL)`: killed when the thread that started us ends (the
    /// parent starts workers from a thread that lives as long as it does). `prctl` is variadic in
    /// C, so it is called through its address with fixed arguments.
    private static func setParentDeathSignal() {
        #if os(Linux)
        let setDeathSignal: Int32 = 1  // PR_SET_PDEATHSIG
        if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "prctl") {
            _ = unsafeBitCast(symbol, to: Prctl.self)(setDeathSignal, UInt(SIGKILL), 0, 0, 0)
        }
        #endif
    }

    private static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("auth password hashing worker: \(message)\n".utf8))
        exit(2)
    }

    /// What each hashing thread made of its priority, once all of them have started.
    private final class StartedThreads: Sendable {
        private let applied = Mutex<[String]>([])
        private let started = DispatchSemaphore(value: 0)

        func add(_ description: String) {
            applied.withLock { $0.append(description) }
            started.signal()
        }

        func wait(for count: Int) -> [String] {
            for _ in 0..<count { started.wait() }
            return applied.withLock { $0 }
        }
    }

    /// Requests waiting for a hashing thread, first come first served.
    private final class WorkQueue: Sendable {
        private let requests = Mutex<[HashingWorkerWire.Request]>([])
        private let available = DispatchSemaphore(value: 0)

        func put(_ request: HashingWorkerWire.Request) {
            requests.withLock { $0.append(request) }
            available.signal()
        }

        func take() -> HashingWorkerWire.Request {
            available.wait()
            return requests.withLock { $0.removeFirst() }
        }
    }

    /// Whole answers to the parent, one at a time; the parent gone ends the worker.
    private final class AnswerWriter: Sendable {
        private let descriptor: Mutex<Int32>

        init(descriptor: Int32) {
            self.descriptor = Mutex(descriptor)
        }

        func send(_ answer: HashingWorkerWire.Answer) {
            var buffer = ByteBufferAllocator().buffer(capacity: 96)
            HashingWorkerWire.write(answer, to: &buffer)
            let bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
            descriptor.withLock { descriptor in
                var written = 0
                while written < bytes.count {
                    let count = bytes[written...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
                    if count < 0 {
                        if errno == EINTR { continue }
                        exit(0)
                    }
                    written += count
                }
            }
        }
    }
}
