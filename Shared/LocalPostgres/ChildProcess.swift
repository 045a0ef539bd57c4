#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Starts programs with `posix_spawn` and waits with `waitpid`.
///
/// Foundation's `Process.waitUntilExit()` was seen to hang after `runuser … pg_ctl start`
/// (a zombie runuser); plain `posix_spawn` + `waitpid` does not.
package enum ChildProcess {
    package struct Failure: Error, CustomStringConvertible {
        package let command: String
        package let status: Int32
        package let output: String
        package var description: String { "\(command) exited with status \(status)\(output.isEmpty ? "" : ": \(output)")" }
    }

    /// Starts `arguments[0]` (a path, or a name looked up in PATH) with output sent to `outputPath`.
    package static func spawn(
        _ arguments: [String],
        environment: [String: String]? = nil,
        outputPath: String = "/dev/null"
    ) throws -> pid_t {
        try spawn(arguments, environment: environment) { actions in
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
    }

    /// Starts `arguments[0]` with `input` as its standard input and `output` as its standard
    /// output (descriptors of this process, e.g. pipe ends; they stay open here); its standard
    /// error is this process's.
    package static func spawn(_ arguments: [String], environment: [String: String]? = nil, input: Int32, output: Int32) throws -> pid_t {
        try spawn(arguments, environment: environment) { actions in
            posix_spawn_file_actions_adddup2(&actions, input, 0)
            posix_spawn_file_actions_adddup2(&actions, output, 1)
        }
    }

    private static func spawn(
        _ arguments: [String], environment: [String: String]?, standardStreams: (inout posix_spawn_file_actions_t) -> Void
    ) throws -> pid_t {
        precondition(!arguments.isEmpty)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        standardStreams(&actions)
        // Nothing else of ours goes to the child: NIO's sockets are not close-on-exec, and a
        // PostgreSQL started by a running service would otherwise hold its listening port open.
        closeInheritedDescriptors(&actions)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Children get default signal handling even if this process blocks or ignores signals.
        var defaultSignals = sigset_t()
        sigfillset(&defaultSignals)
        posix_spawnattr_setsigdefault(&attributes, &defaultSignals)
        var emptyMask = sigset_t()
        sigemptyset(&emptyMask)
        posix_spawnattr_setsigmask(&attributes, &emptyMask)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let env = (environment ?? ProcessInfo.processInfo.environment).map { "\($0.key)=\($0.value)" }
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        var envp: [UnsafeMutablePointer<CChar>?] = env.map { strdup($0) } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let result = posix_spawnp(&pid, arguments[0], &actions, &attributes, &argv, &envp)
        guard result == 0 else {
            throw Failure(command: arguments.joined(separator: " "), status: result, output: String(cString: strerror(result)))
        }
        return pid
    }

    private typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32

    /// glibc 2.34+ has `posix_spawn_file_actions_addclosefrom_np`, which Swift's Glibc module does
    /// not import; elsewhere every descriptor open now is closed one by one.
    private static func closeInheritedDescriptors(_ actions: inout posix_spawn_file_actions_t) {
        if let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") {
            _ = unsafeBitCast(symbol, to: CloseFrom.self)(&actions, 3)
            return
        }
        let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd"))?.compactMap { Int32($0) } ?? []
        for descriptor in open where descriptor > 2 {
            posix_spawn_file_actions_addclose(&actions, descriptor)
        }
    }

    /// Waits for `pid` and returns its exit status (128 + signal when it was killed).
    @discardableResult
    package static func wait(_ pid: pid_t) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 {
            if errno != EINTR { return -1 }
        }
        if status & 0x7F == 0 { return (status >> 8) & 0xFF }
        return 128 + (status & 0x7F)
    }

    /// `pid`'s exit status (as `wait` gives it) when it has ended, else nil at once: for callers that
    /// wait with a deadline (chat runs `pdftotext` so).
    package static func exitStatus(ifEnded pid: pid_t) -> Int32? {
        var status: Int32 = 0
        var ended = waitpid(pid, &status, WNOHANG)
        while ended == -1, errno == EINTR { ended = waitpid(pid, &status, WNOHANG) }
        if ended == 0 { return nil }
        if ended == -1 { return -1 }
        if status & 0x7F == 0 { return (status >> 8) & 0xFF }
        return 128 + (status & 0x7F)
    }

    /// Runs a command to completion; throws with its output when it fails.
    package static func run(_ arguments: [String], environment: [String: String]? = nil) throws {
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("child-\(UUID().uuidString).log").path
        defer { try? FileManager.default.removeItem(atPath: log) }
        let status = wait(try spawn(arguments, environment: environment, outputPath: log))
        guard status == 0 else {
            let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            throw Failure(command: arguments.joined(separator: " "), status: status, output: output.trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }

    /// A TCP port on 127.0.0.1 that was free a moment ago, chosen by the kernel.
    package static func freePort() throws -> Int {
        try bindLoopback(port: 0)
    }

    /// True when `port` on 127.0.0.1 can be bound right now.
    package static func isFree(port: Int) -> Bool {
        (try? bindLoopback(port: port)) != nil
    }

    private static func bindLoopback(port: Int) throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(command: "socket", status: errno, output: "") }
        defer { close(fd) }
        // As servers do: a port whose old connections linger in TIME_WAIT counts as free.
        var reuse: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bind(fd, socketAddress, length) == 0 && getsockname(fd, socketAddress, &length) == 0
            }
        }
        guard bound else { throw Failure(command: "bind", status: errno, output: "") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
