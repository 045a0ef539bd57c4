#if canImport(Glibc)
import Glibc
#endif
import Foundation
import LocalPostgres
import NIOHTTP1
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

/// Two real chat executables on one chat database share the knowledge-base queue: each document
/// is processed once (one claim, one set of chunks), and a document whose process is SIGKILLed
/// while extracting it is finished by the other once its lease has run out. auth, billing and
/// tenancy run in this process; both chat processes get the stack's chat environment (database,
/// storage directory), each on a port of its own.
@Suite("knowledge queue across chat processes", .serialized)
struct KnowledgeReplicasTests {
    /// One chat executable, started with the stack's chat environment plus `extra`.
    final class ChatProcess: Sendable {
        let pid: pid_t
        let url: String
        let logPath: String

        init(stack: TestStack, extra: [String: String]) async throws {
            let port = try TestPorts.next()
            let binary = "\(ChildServices.binDirectory)/chat"
            guard FileManager.default.isExecutableFile(atPath: binary) else {
                throw FixtureError(description: "\(binary) is missing: build the executables first (swift build --build-tests)")
            }
            var environment = ProcessInfo.processInfo.environment
            environment.merge(stack.environment(for: .chat)) { $1 }
            environment["HTTP_PORT"] = String(port)
            environment["LOG_LEVEL"] = "info"
            environment.merge(extra) { $1 }
            url = "http://127.0.0.1:\(port)"
            logPath = NSTemporaryDirectory() + "chat-replica-\(getpid())-\(port).log"
            let pid = try ChildProcess.spawn([binary], environment: environment, outputPath: logPath)
            self.pid = pid
            Cleanup.register { Glibc.kill(pid, SIGKILL) }
            do {
                try await TestHTTP.waitUntilLive(url)
            } catch {
                Glibc.kill(pid, SIGKILL)
                ChildProcess.wait(pid)
                throw error
            }
        }

        /// How many documents this process logged as processed.
        var processed: Int {
            ((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "").components(separatedBy: "knowledge document processed").count - 1
        }

        func stop() {
            Glibc.kill(pid, SIGTERM)
            ChildProcess.wait(pid)
        }

        func kill() {
            Glibc.kill(pid, SIGKILL)
            ChildProcess.wait(pid)
        }
    }

    struct FileView: Decodable { var id: String }

    /// A stand-in for `pdftotext` (`PDFTOTEXT_PATH`): runs `body`, a shell script.
    static func script(_ body: String) throws -> String {
        let path = NSTemporaryDirectory() + "fake-pdftotext-\(UUID().uuidString.prefix(8))"
        try "#!/bin/sh\n\(body)\n".write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
        return path
    }

    static func upload(_ chat: ChatProcess, token: String, filename: String, bytes: [UInt8]) async throws -> String {
        let boundary = "kb-\(UUID().uuidString)"
        let body = Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"\(filename)\"\r\nContent-Type: application/pdf\r\n\r\n".utf8)
            + bytes + Array("\r\n--\(boundary)--\r\n".utf8)
        let answer = try await TestHTTP.send(
            .POST, chat.url + "/api/knowledge-base/upload",
            headers: ["Authorization": "Bearer \(token)", "Content-Type": "multipart/form-data; boundary=\(boundary)"], bytes: body
        )
        guard answer.status == 201 else { throw FixtureError(description: "upload answered \(answer.status): \(answer.text)") }
        return try answer.json(FileView.self).id
    }

    static func pdf(_ line: String) -> [UInt8] { SamplePDF.make([line]) }

    /// auth, billing and tenancy in this process, a registered tenant and an admin's token for it.
    static func withServices(
        lease: Int, _ body: @Sendable (TestStack, String, DatabaseConfig) async throws -> Void
    ) async throws {
        let stack = try await TestStack.make(overrides: ["KNOWLEDGE_LEASE_SECONDS": String(lease), "KNOWLEDGE_WORKER_CONCURRENCY": "1"])
        do {
            try await stack.start(.auth, .billing, .tenancy)
            let forge = try await TokenForge.fromAuthDatabase(stack.databases[.auth]!)
            let registered = try await Fixtures.register(at: stack.url(.tenancy))
            let token = try await forge.sign(tenantID: UUID(uuidString: registered.tenantId)!, role: .admin)
            try await body(stack, token, stack.databases[.chat]!)
            await stack.stopAll()
        } catch {
            await stack.stopAll()
            throw error
        }
    }

    @Test func twoProcessesShareTheQueueAndProcessEachFileOnce() async throws {
        try await Self.withServices(lease: 60) { stack, token, database in
            // Each PDF takes a second to read, so one process cannot take them all before the other does.
            let slow = try Self.script("sleep 1\nexec pdftotext \"$@\"")
            defer { try? FileManager.default.removeItem(atPath: slow) }
            let first = try await ChatProcess(stack: stack, extra: ["PDFTOTEXT_PATH": slow])
            let second = try await ChatProcess(stack: stack, extra: ["PDFTOTEXT_PATH": slow])
            defer {
                first.stop()
                second.stop()
            }
            var ids: [String] = []
            for index in 0..<6 {
                let chat = index.isMultiple(of: 2) ? first : second
                ids.append(try await Self.upload(chat, token: token, filename: "leaflet-\(index).pdf", bytes: Self.pdf("Leaflet \(index) about sourdough")))
            }
            let done = try await Polling.within(60) {
                try await TestPostgres.count(database, "SELECT count(*)::int FROM knowledge_documents WHERE status = 'completed'") == ids.count
            }
            let unfinished = try await TestPostgres.count(database, "SELECT count(*)::int FROM knowledge_documents WHERE status <> 'completed'")
            #expect(done != nil, "\(unfinished) not completed")
            // One claim each, one chunk each, no chunk twice.
            #expect(try await TestPostgres.count(database, "SELECT count(*)::int FROM knowledge_documents WHERE attempts = 1 AND chunk_count = 1") == ids.count)
            #expect(try await TestPostgres.count(database, "SELECT count(*)::int FROM knowledge_chunks") == ids.count)
            #expect(try await TestPostgres.count(database, "SELECT count(DISTINCT (document_id, position))::int FROM knowledge_chunks") == ids.count)
            for (index, id) in ids.enumerated() {
                let text = try await TestPostgres.count(
                    database, "SELECT count(*)::int FROM knowledge_chunks WHERE document_id = \(UUID(uuidString: id)!) AND content LIKE \("%Leaflet \(index) about%")"
                )
                #expect(text == 1, "document \(index)")
            }
            // Both processes worked on the queue, and together processed each document once.
            #expect(first.processed + second.processed == ids.count, "first \(first.processed), second \(second.processed)")
            #expect(first.processed > 0 && second.processed > 0, "first \(first.processed), second \(second.processed)")
        }
    }

    @Test func aProcessKilledMidIngestionLeavesTheJobToTheOther() async throws {
        // The lease outlasts starting the second process, so the first does not claim its own job again before it dies.
        try await Self.withServices(lease: 6) { stack, token, database in
            // The first process's pdftotext never finishes: it notes its pid and sleeps.
            let marker = NSTemporaryDirectory() + "hung-pdftotext-\(UUID().uuidString.prefix(8))"
            let hang = try Self.script("echo $$ > \(marker)\nexec sleep 120")
            defer {
                try? FileManager.default.removeItem(atPath: hang)
                try? FileManager.default.removeItem(atPath: marker)
            }
            let doomed = try await ChatProcess(stack: stack, extra: ["PDFTOTEXT_PATH": hang, "KNOWLEDGE_PDF_TIMEOUT_SECONDS": "120"])
            let id = try await Self.upload(doomed, token: token, filename: "menu.pdf", bytes: Self.pdf("The menu changes every Tuesday"))
            let document = UUID(uuidString: id)!
            let claimed = try await Polling.within(30) { FileManager.default.fileExists(atPath: marker) }
            #expect(claimed != nil, "the first process never started extracting")
            #expect(try await TestPostgres.count(database, "SELECT count(*)::int FROM knowledge_documents WHERE id = \(document) AND status = 'processing' AND attempts = 1") == 1)

            let leaseEnds = try await TestPostgres.count(database, "SELECT floor(extract(epoch FROM lease_expires_at))::int FROM knowledge_documents WHERE id = \(document)")

            // The other process comes up while the first holds the lease, then the first dies mid-extraction.
            let survivor = try await ChatProcess(stack: stack, extra: [:])
            defer { survivor.stop() }
            doomed.kill()
            if let pid = Int32(((try? String(contentsOfFile: marker, encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)) {
                Glibc.kill(pid, SIGKILL)
            }
            #expect(try await TestPostgres.count(database, "SELECT count(*)::int FROM knowledge_documents WHERE id = \(document) AND status = 'processing' AND attempts = 1") == 1)

            let finished = try await Polling.within(30) {
                try await TestPostgres.count(database, "SELECT count(*)::int FROM knowledge_documents WHERE id = \(document) AND status = 'completed'") == 1
            }
            #expect(finished != nil, "the survivor did not finish the job")
            // Claimed a second time (after the lease ran out), once, with one set of chunks.
            #expect(try await TestPostgres.count(database, "SELECT count(*)::int FROM knowledge_documents WHERE id = \(document) AND attempts = 2 AND chunk_count = 1 AND lease_token IS NULL") == 1)
            #expect(try await TestPostgres.count(database, "SELECT count(*)::int FROM knowledge_chunks WHERE document_id = \(document) AND content LIKE '%menu changes every Tuesday%'") == 1)
            #expect(try await TestPostgres.count(database, "SELECT count(*)::int FROM knowledge_chunks") == 1)
            #expect(survivor.processed == 1)
            // Not before the dead process's lease ran out.
            #expect(try await TestPostgres.count(database, "SELECT count(*)::int FROM knowledge_documents WHERE id = \(document) AND processed_at >= to_timestamp(\(leaseEnds))") == 1)
        }
    }
}
