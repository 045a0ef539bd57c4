#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import LocalPostgres
import NIOPosix

/// The text of a PDF, from poppler's `pdftotext` run as a child process on a temporary copy of the
/// file, killed when it runs past `timeout`. A missing `pdftotext` fails the document with a
/// reason that says so.
struct PDFText: Sendable {
    /// `pdftotext`, or a path to it (`PDFTOTEXT_PATH`); a bare name is looked up on `PATH`.
    var executable: String
    var timeout: Duration
    var maxTextBytes: Int

    func text(of data: Data) async throws -> String {
        guard let path = Self.resolve(executable) else {
            throw ExtractionFailure("PDF text extraction is unavailable: pdftotext (poppler-utils) is not installed on the server")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("kb-pdf-\(UUID().uuidString.lowercased())")
        let input = directory.appendingPathComponent("in.pdf")
        let output = directory.appendingPathComponent("out.txt")
        // File work on the NIO thread pool, not on the tasks' cooperative threads.
        try await NIOThreadPool.singleton.runIfActive {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: false)
            try data.write(to: input)
        }
        defer { try? FileManager.default.removeItem(at: directory) }

        guard let status = try await Self.run([path, "-enc", "UTF-8", "-q", input.path, output.path], timeout: timeout) else {
            throw ExtractionFailure("reading the PDF took longer than \(timeout.components.seconds) s and was stopped")
        }
        guard status == 0 else { throw ExtractionFailure("the PDF could not be read (pdftotext exited with status \(status))") }
        let maxTextBytes = self.maxTextBytes
        return try await NIOThreadPool.singleton.runIfActive {
            let size = (try? FileManager.default.attributesOfItem(atPath: output.path)[.size] as? Int) ?? 0
            guard size <= maxTextBytes else { throw ExtractionFailure("the PDF's text is larger than \(maxTextBytes) bytes") }
            guard let text = String(data: (try? Data(contentsOf: output)) ?? Data(), encoding: .utf8) else {
                throw ExtractionFailure("the PDF's text is not UTF-8")
            }
            return text
        }
    }

    static func resolve(_ executable: String) -> String? {
        if executable.contains("/") { return FileManager.default.isExecutableFile(atPath: executable) ? executable : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/\(executable)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Runs `arguments` (posix_spawn: the child inherits none of the service's sockets) and returns
    /// its exit status, or nil when it ran past `timeout` and was killed. Waits by polling `waitpid`
    /// without blocking a thread; a cancelled wait kills and reaps the child too.
    static func run(_ arguments: [String], timeout: Duration) async throws -> Int32? {
        let pid = try ChildProcess.spawn(arguments)
        let deadline = ContinuousClock.now + timeout
        do {
            while true {
                if let status = ChildProcess.exitStatus(ifEnded: pid) { return status }
                if ContinuousClock.now >= deadline {
                    kill(pid, SIGKILL)
                    ChildProcess.wait(pid)
                    return nil
                }
                try await Task.sleep(for: .milliseconds(20))
            }
        } catch {
            kill(pid, SIGKILL)
            ChildProcess.wait(pid)
            throw error
        }
    }
}
