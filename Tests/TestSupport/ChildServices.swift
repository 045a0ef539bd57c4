#if canImport(Glibc)
import Glibc
#endif
import Foundation
import LocalPostgres
import Synchronization

/// The real service executables, started as separate processes with a `TestStack`'s environment.
package final class ChildServices: Sendable {
    package let stack: TestStack
    package let logDirectory: String
    private let pids = Mutex<[ServiceName: pid_t]>([:])

    package init(stack: TestStack) throws {
        self.stack = stack
        self.logDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("e2e-logs-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: logDirectory, withIntermediateDirectories: true)
    }

    /// Where `swift build` put the executables: `SUITE_BIN_DIR`, or `.build/debug` of this checkout.
    package static var binDirectory: String {
        if let configured = ProcessInfo.processInfo.environment["SUITE_BIN_DIR"], !configured.isEmpty { return configured }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug").path
    }

    package func start(_ service: ServiceName) async throws {
        let binary = "\(Self.binDirectory)/\(service.rawValue)"
        guard FileManager.default.isExecutableFile(atPath: binary) else {
            throw FixtureError(description: "\(binary) is missing: build the executables first (swift build --build-tests)")
        }
        var environment = ProcessInfo.processInfo.environment
        environment.merge(stack.environment(for: service)) { _, service in service }
        environment["LOG_LEVEL"] = "info"
        let pid = try ChildProcess.spawn([binary], environment: environment, outputPath: "\(logDirectory)/\(service.rawValue).log")
        pids.withLock { $0[service] = pid }
        Cleanup.register { Glibc.kill(pid, SIGKILL) }
        do {
            try await TestHTTP.waitUntilLive(stack.url(service))
        } catch {
            throw FixtureError(description: "\(service.rawValue) did not come up; log: \(log(service))")
        }
    }

    /// SIGTERM, then waits for the process; returns its exit status.
    @discardableResult
    package func stop(_ service: ServiceName) -> Int32? {
        guard let pid = pids.withLock({ $0.removeValue(forKey: service) }) else { return nil }
        Glibc.kill(pid, SIGTERM)
        return ChildProcess.wait(pid)
    }

    /// SIGKILL: the process gets no chance to drain or clean up.
    package func kill(_ service: ServiceName) {
        guard let pid = pids.withLock({ $0.removeValue(forKey: service) }) else { return }
        Glibc.kill(pid, SIGKILL)
        ChildProcess.wait(pid)
    }

    /// Sends SIGTERM without waiting; `waitForExit` collects the status.
    package func terminate(_ service: ServiceName) -> pid_t? {
        guard let pid = pids.withLock({ $0.removeValue(forKey: service) }) else { return nil }
        Glibc.kill(pid, SIGTERM)
        return pid
    }

    /// The running service's resident memory (VmRSS), in MiB.
    package func residentMegabytes(_ service: ServiceName) -> Int? {
        guard let pid = pids.withLock({ $0[service] }),
            let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kilobytes = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) })
        else { return nil }
        return kilobytes / 1024
    }

    package func stopAll() {
        for service in ServiceName.allCases { stop(service) }
    }

    package func log(_ service: ServiceName) -> String {
        (try? String(contentsOfFile: "\(logDirectory)/\(service.rawValue).log", encoding: .utf8)) ?? ""
    }
}
