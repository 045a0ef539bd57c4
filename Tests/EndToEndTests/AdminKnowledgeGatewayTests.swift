import Foundation
import NIOHTTP1
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

/// Seed 001's knowledge administration through the gateway: an owner uploads with metadata, reads
/// the tenant's figures, queues the document again and deletes it with a JSON body on `DELETE`.
@Suite("knowledge administration through the gateway")
struct AdminKnowledgeGatewayTests {
    struct FileView: Decodable { var id: String; var metadata: [String: String]? }
    struct Stats: Decodable { var documents: Int; var completed: Int; var chunks: Int }
    struct Deleted: Decodable { var deleted: [String] }

    @Test func uploadStatsIngestAndDeleteThroughTheGateway() async throws {
        try await TestStack.with(.auth, .billing, .tenancy, .chat, .gateway) { stack in
            let gateway = stack.url(.gateway)
            let owner = try await Fixtures.register(at: gateway)
            let auth = Fixtures.bearer(owner.accessToken)
            let boundary = "kb-\(UUID().uuidString)"
            let body = "--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"faq.md\"\r\nContent-Type: text/markdown\r\n\r\n"
                + "We deliver on Saturdays.\r\n--\(boundary)\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\r\n{\"team\":\"support\"}\r\n"
                + "--\(boundary)\r\nContent-Disposition: form-data; name=\"tenant_id\"\r\n\r\n\(owner.tenantId)\r\n--\(boundary)--\r\n"
            let uploaded = try await TestHTTP.send(
                .POST, gateway + "/api/admin/knowledge/upload", headers: auth.merging(["Content-Type": "multipart/form-data; boundary=\(boundary)"]) { $1 },
                bytes: Array(body.utf8)
            )
            #expect(uploaded.status == 201, "\(uploaded.text)")
            let file = try uploaded.json(FileView.self)
            #expect(file.metadata == ["team": "support"])

            func stats() async throws -> Stats {
                try await TestHTTP.send(.GET, gateway + "/api/admin/knowledge/stats", headers: auth).json(Stats.self)
            }
            #expect(try await Polling.within(30) { try await stats().completed == 1 } != nil)
            let ingest = try await TestHTTP.send(.POST, gateway + "/api/admin/knowledge/ingest", headers: auth, json: ["document_ids": [file.id]])
            #expect(ingest.status == 202, "\(ingest.text)")
            #expect(try await Polling.within(30) { try await stats().completed == 1 } != nil)

            let deleted = try await TestHTTP.send(.DELETE, gateway + "/api/admin/knowledge/documents", headers: auth, json: ["document_ids": [file.id]])
            #expect(deleted.status == 200, "\(deleted.text)")
            #expect(try deleted.json(Deleted.self).deleted == [file.id])
            let after = try await stats()
            #expect(after.documents == 0 && after.chunks == 0)
            #expect(try await TestPostgres.count(stack.databases[.chat]!, "SELECT count(*)::int FROM knowledge_documents") == 0)
        }
    }
}
