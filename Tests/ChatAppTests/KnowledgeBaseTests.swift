import Foundation
import HTTPTypes
import NIOCore
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

@testable import ChatApp

/// `/api/knowledge-base/*` through chat's router, with the ingestion worker running: each format
/// parsed into chunks, the bad inputs refused or failed cleanly with nothing left behind, and
/// other tenants' documents out of reach.
@Suite("chat knowledge base")
struct KnowledgeBaseTests {
    @Test func everyFormatBecomesChunksInTheTenantsLanguage() async throws {
        try await KnowledgeHarness.with { kb in
            let tenant = try await kb.tenant(language: "es")
            let token = try await kb.token(tenant, .admin)
            let html = """
                <html><head><title>Ignored head</title><style>body { color: red }</style></head>
                <body><h1>Panadería Azul</h1><script>alert("x")</script><p>Horario: lunes a viernes &amp; sábados.</p><!-- hidden --></body></html>
                """
            let inputs: [(String, [UInt8], [String], [String])] = [
                ("notes.txt", Array("Las panaderías abren temprano.\nEnvíos gratis desde 20 euros.".utf8), ["panaderías abren temprano"], []),
                ("faq.md", Array("# Preguntas\n\n**Devoluciones**: 30 días.".utf8), ["Devoluciones"], []),
                ("prices.csv", Array("producto,precio\npan,2\ntarta,15\n".utf8), ["tarta,15"], []),
                ("page.html", Array(html.utf8), ["Panadería Azul", "lunes a viernes & sábados"], ["alert", "<", "color: red", "hidden", "Ignored head"]),
                ("manual.docx", try KnowledgeFiles.docx("doc"), ["Opening hours: Monday to Friday", "Returns within 30 days & free."], ["<w:"]),
                ("guide.pdf", KnowledgeFiles.pdf(["Delivery takes two days.", "Call us on weekdays."]), ["Delivery takes two days."], []),
            ]
            for (name, bytes, expected, absent) in inputs {
                let status = try await kb.ingest(bytes, filename: name, token: token)
                #expect(status.status == "completed", "\(name): \(status.error ?? "")")
                let chunks = try await kb.chunks(status.id)
                #expect(status.chunkCount == chunks.count && !chunks.isEmpty, "\(name)")
                let text = chunks.map(\.content).joined(separator: "\n")
                for phrase in expected { #expect(text.contains(phrase), "\(name) lacks \(phrase): \(text)") }
                for phrase in absent { #expect(!text.contains(phrase), "\(name) keeps \(phrase): \(text)") }
                #expect(chunks.allSatisfy { $0.config == "spanish" }, "\(name)")
            }
            // Spanish stemming: the plural finds the singular's chunk.
            #expect(try await kb.count("SELECT count(*)::int FROM knowledge_chunks WHERE search_vector @@ websearch_to_tsquery('spanish', 'panadería')") >= 1)
            #expect(try await kb.count("SELECT count(*)::int FROM knowledge_chunks WHERE tenant_id <> \(tenant)") == 0)

            let list = try await kb.send(.get, "/api/knowledge-base/files?limit=4", token: token)
            #expect(list.status == 200)
            struct Listing: Decodable {
                var files: [KnowledgeHarness.FileView]
                var total: Int
            }
            let listing = try list.json(Listing.self)
            #expect(listing.total == 6 && listing.files.count == 4)
            #expect(listing.files.allSatisfy { $0.processingStatus == "completed" && $0.filename.hasPrefix($0.id) })
            #expect(kb.storedFiles().count == 6)
            #expect(try await kb.send(.get, "/api/knowledge-base/files?limit=0", token: token).status == 422)

            // The first completed document told tenancy once; its onboarding step is done.
            #expect(try await kb.count("SELECT count(*)::int FROM outbox_events WHERE type = 'chat.knowledge_base_uploaded'") == 1)
            let marked = try await Polling.within(20) {
                try await TestPostgres.count(
                    kb.stack.databases[.tenancy]!,
                    "SELECT count(*)::int FROM onboarding_progress WHERE tenant_id = \(tenant) AND step_knowledge_base_uploaded"
                ) == 1
            }
            #expect(marked != nil)
        }
    }

    @Test func chunksAreBoundedAndOverlap() {
        let sentence = "The bakery opens at seven and closes at six every weekday. "
        let text = String(repeating: sentence, count: 60)
        let chunks = TextChunker().chunks(of: text)
        #expect(chunks.count > 3)
        #expect(chunks.allSatisfy { $0.unicodeScalars.count <= 1_000 })
        // Each chunk ends at a sentence and the next repeats the end of the previous one.
        #expect(chunks.dropLast().allSatisfy { $0.hasSuffix(".") })
        for (previous, next) in zip(chunks, chunks.dropFirst()) {
            #expect(previous.hasSuffix(String(next.prefix(40))) || previous.contains(String(next.prefix(40))))
        }
        #expect(TextChunker().chunks(of: " \n\n \t ").isEmpty)
        #expect(TextChunker.tidy("a  b\r\n\r\n\r\n\r\nc\t\td") == "a b\n\nc d")
    }

    @Test func badUploadsAreRefusedAndChangeNothing() async throws {
        try await KnowledgeHarness.with { kb in
            let tenant = try await kb.tenant()
            let token = try await kb.token(tenant, .owner)
            let lies: [(String, [UInt8], String)] = [
                ("report.pdf", Array("just text pretending".utf8), "is not a PDF file"),
                ("manual.docx", KnowledgeFiles.pdf(["x"]), "is not a DOCX file"),
                ("notes.txt", KnowledgeFiles.pdf(["x"]), "binary document"),
                ("table.csv", [0x00, 0x01, 0xFF, 0xFE, 0x41], "not UTF-8 text"),
                ("page.html", try KnowledgeFiles.docx("doc"), "binary document"),
                ("program.exe", Array("MZ".utf8), "must be one of"),
                ("noextension", Array("hello".utf8), "must be one of"),
                ("empty.txt", [], "is empty"),
            ]
            for (name, bytes, reason) in lies {
                let answer = try await kb.upload(bytes, filename: name, token: token)
                #expect(answer.status == 422, "\(name): \(answer.text)")
                #expect(try answer.error().fields?["file"]?.first?.contains(reason) == true, "\(name): \(answer.text)")
            }
            var json = HTTPFields()
            json[.contentType] = "application/json"
            let notMultipart = try await kb.send(.post, "/api/knowledge-base/upload", token: token, headers: json, body: ByteBuffer(string: "{}"))
            #expect(notMultipart.status == 415)
            var form = HTTPFields()
            form[.contentType] = MultipartBody.contentType
            let malformed = try await kb.send(.post, "/api/knowledge-base/upload", token: token, headers: form, body: ByteBuffer(string: "garbage"))
            #expect(malformed.status == 400 || malformed.status == 422, "\(malformed.text)")
            let noFile = try await kb.send(
                .post, "/api/knowledge-base/upload", token: token, headers: form,
                body: ByteBuffer(bytes: MultipartBody(parts: [.init(name: "other", bytes: Array("x".utf8))]).bytes)
            )
            #expect(noFile.status == 422)
            // Past the route's own limit (50 MiB + 64 KiB of framing): 413 before the body is read.
            let tooBig = try await kb.upload([UInt8](repeating: 0x61, count: KnowledgeBase.maxBodyBytes + 1), filename: "big.txt", token: token)
            #expect(tooBig.status == 413)
            #expect(try tooBig.error().code == "PAYLOAD_TOO_LARGE")
            // Members without the role, and no token at all.
            let member = try await kb.upload(Array("hi".utf8), filename: "a.txt", token: try await kb.token(tenant, .user))
            #expect(member.status == 403)
            #expect(try await kb.send(.get, "/api/knowledge-base/files").status == 401)

            #expect(try await kb.count("SELECT count(*)::int FROM knowledge_documents") == 0)
            #expect(kb.storedFiles().isEmpty)
            // The route's limit is its own: 2 MiB, beyond every other route's `MAX_BODY_BYTES`, is taken.
            let large = try await kb.upload(Array(String(repeating: "Fresh bread daily. ", count: 110_000).utf8), filename: "large.txt", token: token)
            #expect(large.status == 201, "\(large.text)")
        }
    }

    @Test func hostileDocumentsFailCleanly() async throws {
        try await KnowledgeHarness.with { kb in
            let tenant = try await kb.tenant()
            let token = try await kb.token(tenant)
            let cases: [(String, [UInt8], String)] = [
                ("bomb.docx", try KnowledgeFiles.docx("bomb"), "larger than"),
                ("entities.docx", try KnowledgeFiles.docx("dtd"), "declares a DTD"),
                ("hollow.docx", try KnowledgeFiles.docx("nodoc"), "no word/document.xml"),
                ("broken.docx", DocumentFormat.zipMagic + [UInt8](repeating: 7, count: 64), "not a readable zip archive"),
                ("broken.pdf", Array("%PDF-1.4\nnothing here".utf8), "could not be read"),
                ("blank.txt", Array("   \n\n  ".utf8), "no text"),
            ]
            for (name, bytes, reason) in cases {
                let status = try await kb.ingest(bytes, filename: name, token: token)
                #expect(status.status == "failed", "\(name)")
                #expect(status.error?.contains(reason) == true, "\(name): \(status.error ?? "no error")")
                #expect(status.chunkCount == 0)
            }
            #expect(try await kb.count("SELECT count(*)::int FROM knowledge_chunks") == 0)
            // A failure is not an onboarding step.
            #expect(try await kb.count("SELECT count(*)::int FROM outbox_events") == 0)
        }
    }

    @Test func aHangingPdftotextIsStopped() async throws {
        let script = NSTemporaryDirectory() + "slow-pdftotext-\(UUID().uuidString).sh"
        try "#!/bin/sh\nexec sleep 30\n".write(toFile: script, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script)
        defer { try? FileManager.default.removeItem(atPath: script) }
        try await KnowledgeHarness.with(overrides: ["PDFTOTEXT_PATH": script, "KNOWLEDGE_PDF_TIMEOUT_SECONDS": "1"]) { kb in
            let token = try await kb.token(try await kb.tenant())
            let started = Date()
            let status = try await kb.ingest(KnowledgeFiles.pdf(["hello"]), filename: "slow.pdf", token: token)
            #expect(status.status == "failed")
            #expect(status.error?.contains("took longer than 1 s") == true, "\(status.error ?? "")")
            #expect(Date().timeIntervalSince(started) < 15)
        }
        try await KnowledgeHarness.with(overrides: ["PDFTOTEXT_PATH": "/nonexistent/pdftotext"]) { kb in
            let token = try await kb.token(try await kb.tenant())
            let status = try await kb.ingest(KnowledgeFiles.pdf(["hello"]), filename: "any.pdf", token: token)
            #expect(status.status == "failed")
            #expect(status.error?.contains("pdftotext (poppler-utils) is not installed") == true, "\(status.error ?? "")")
        }
    }

    @Test func otherTenantsDocumentsAreNotFound() async throws {
        try await KnowledgeHarness.with { kb in
            let owner = try await kb.tenant()
            let ownerToken = try await kb.token(owner)
            let document = try await kb.ingest(Array("Our shop sells bread.".utf8), filename: "shop.txt", token: ownerToken)
            let other = try await kb.token(try await kb.tenant(), .owner)
            let id = document.id
            for (method, path) in [
                (HTTPRequest.Method.get, "/api/knowledge-base/files/\(id)/status"), (.delete, "/api/knowledge-base/files/\(id)"),
                (.post, "/api/knowledge-base/files/\(id)/reprocess"), (.get, "/api/knowledge-base/files/not-a-uuid/status"),
                (.delete, "/api/knowledge-base/files/\(UUID())"),
            ] {
                let answer = try await kb.send(method, path, token: other)
                #expect(answer.status == 404, "\(method) \(path)")
                #expect(try answer.error().code == "FILE_NOT_FOUND")
            }
            struct Listing: Decodable { var total: Int }
            #expect(try await kb.send(.get, "/api/knowledge-base/files", token: other).json(Listing.self).total == 0)
            // Nothing changed for the owner.
            #expect(try await kb.count("SELECT count(*)::int FROM knowledge_documents WHERE status = 'completed' AND attempts = 1") == 1)
            #expect(try await kb.chunks(id).count == 1)
            #expect(kb.storedFiles().count == 1)
            // A super_admin reaches it by naming the tenant.
            let admin = try await kb.token(UUID(), .superAdmin)
            let seen = try await kb.send(.get, "/api/knowledge-base/files/\(id)/status?tenant_id=\(owner.uuidString.lowercased())", token: admin)
            #expect(seen.status == 200)
            #expect(try await kb.send(.get, "/api/knowledge-base/files/\(id)/status", token: admin).status == 404)
            // Anyone else naming a tenant: their own works, another (or a non-UUID) is 404.
            #expect(try await kb.send(.get, "/api/knowledge-base/files?tenant_id=\(owner.uuidString.lowercased())", token: other).status == 404)
            #expect(try await kb.send(.get, "/api/knowledge-base/files?tenant_id=", token: ownerToken).status == 404)
            #expect(try await kb.send(.get, "/api/knowledge-base/files/\(id)/status?tenant_id=\(owner.uuidString.lowercased())", token: ownerToken).status == 200)
        }
    }

    @Test func reprocessAndDelete() async throws {
        try await KnowledgeHarness.with { kb in
            let tenant = try await kb.tenant()
            let token = try await kb.token(tenant)
            let document = try await kb.ingest(Array("First version of the text.".utf8), filename: "a.txt", token: token)
            let queued = try await kb.send(.post, "/api/knowledge-base/files/\(document.id)/reprocess", token: token)
            #expect(queued.status == 202, "\(queued.text)")
            let again = try await kb.finished(document.id, token: token)
            #expect(again.status == "completed" && again.chunkCount == 1)
            #expect(try await kb.chunks(document.id).count == 1)

            let deleted = try await kb.send(.delete, "/api/knowledge-base/files/\(document.id)", token: token)
            #expect(deleted.status == 200)
            #expect(try await kb.count("SELECT count(*)::int FROM knowledge_documents") == 0)
            #expect(try await kb.count("SELECT count(*)::int FROM knowledge_chunks") == 0)
            #expect(kb.storedFiles().isEmpty)
            #expect(try await kb.send(.delete, "/api/knowledge-base/files/\(document.id)", token: token).status == 404)
        }
    }
}
