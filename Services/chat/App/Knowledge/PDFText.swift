#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
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

        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = ["-enc", "UTF-8", "-q", input.path, output.path]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        let child = Child(process)
        let status = try await child.run(timeout: timeout)
        guard let status else { throw ExtractionFailure("reading the PDF took longer than \(timeout.components.seconds) s and was stopped") }
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

    /// A started process and its end, which is awaited through `terminationHandler` (never
    /// `waitUntilExit`, which blocks a thread).
    private final class Child: @unchecked Sendable {
        let process: Process

        init(_ process: Process) { self.process = process }

        /// The exit status, or nil when the process was killed for running past `timeout`.
        func run(timeout: Duration) async throws -> Int32? {
            let ended = AsyncStream<Int32>.makeStream()
            process.terminationHandler = { process in
                ended.continuation.yield(process.terminationStatus)
                ended.continuation.finish()
            }
            try process.run()
            let pid = process.processIdentifier
            let killer = Task {
                try await Task.sleep(for: timeout)
                kill(pid, SIGKILL)
                return true
            }
            var status: Int32?
            for await value in ended.stream { status = value }
            killer.cancel()
            let killed = (try? await killer.value) ?? false
            return killed ? nil : status
        }
    }
}
