import Foundation
import HTTPTypes
import NIOCore
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

@testable import ChatApp

/// Seed 001's `/api/admin/knowledge/*` through chat's router, the ingestion worker running: the
/// same knowledge base as `/api/knowledge-base/*`, for a tenant named in the form or body. A
/// super_admin works on any tenant, a tenant's admins and owners on their own; batches are all or
/// nothing.
@Suite("chat knowledge administration")
struct AdminKnowledgeTests {
    struct Stats: Decodable {
        var tenantId: String
        var documents: Int
        var pending: Int
        var processing: Int
        var completed: Int
        var failed: Int
        var chunks: Int
        var totalBytes: Int
        var lastProcessedAt: Date?
    }

    struct Ingested: Decodable {
        var status: String
        var tenantId: String
        var queued: [String]
        var alreadyQueued: [String]
    }

    struct Deleted: Decodable {
        var status: String
        var tenantId: String
        var deleted: [String]
    }

    struct WithMetadata: Decodable {
        var id: String
        var metadata: [String: String]?
    }

    static func adminUpload(
        _ kb: KnowledgeHarness, _ text: String, filename: String = "faq.txt", tenant: UUID? = nil, metadata: String? = nil, token: String
    ) async throws -> KnowledgeHarness.Answer {
        var parts: [MultipartBody.Part] = [.init(name: "file", filename: filename, contentType: "text/plain", bytes: Array(text.utf8))]
        if let tenant { parts.append(.init(name: "tenant_id", bytes: Array(tenant.uuidString.utf8))) }
        if let metadata { parts.append(.init(name: "metadata", bytes: Array(metadata.utf8))) }
        var headers = HTTPFields()
        headers[.contentType] = MultipartBody.contentType
        return try await kb.send(.post, "/api/admin/knowledge/upload", token: token, headers: headers, body: ByteBuffer(bytes: MultipartBody(parts: parts).bytes))
    }

    static func json(_ object: [String: Any]) throws -> ByteBuffer {
        ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: object))
    }

    static func send(_ kb: KnowledgeHarness, _ method: HTTPRequest.Method, _ path: String, token: String, body: [String: Any]) async throws -> KnowledgeHarness.Answer {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return try await kb.send(method, path, token: token, headers: headers, body: try json(body))
    }

    @Test func adminsUploadIntoTheirTenantAndSuperAdminsIntoAny() async throws {
        try await KnowledgeHarness.with { kb in
            let tenantA = try await kb.tenant()
            let tenantB = try await kb.tenant()
            let adminA = try await kb.token(tenantA, .admin)
            let superAdmin = try await kb.token(tenantB, .superAdmin)

            // A tenant admin, no tenant_id: their own; the metadata is kept and answered.
            let own = try await Self.adminUpload(kb, "Our bakery opens at seven.", tenant: nil, metadata: #"{"source":"handbook"}"#, token: adminA)
            #expect(own.status == 201, "\(own.text)")
            let ownView = try own.json(WithMetadata.self)
            #expect(ownView.metadata == ["source": "handbook"])
            #expect(ownView.id == ownView.id.lowercased())
            #expect(try await kb.finished(ownView.id, token: adminA).status == "completed")
            #expect(try await kb.count("SELECT count(*)::int FROM knowledge_documents WHERE tenant_id = \(tenantA) AND metadata->>'source' = 'handbook'") == 1)

            // A super_admin names tenant A in the form.
            let named = try await Self.adminUpload(kb, "Croissants are baked fresh.", tenant: tenantA, token: superAdmin)
            #expect(named.status == 201, "\(named.text)")
            let namedID = try named.json(WithMetadata.self).id
            #expect(try await kb.finished(namedID, token: adminA).status == "completed")
            #expect(try await kb.count("SELECT count(*)::int FROM knowledge_documents WHERE tenant_id = \(tenantA)") == 2)
            // Seed 000's list of tenant A shows both: one knowledge base behind both doors.
            struct Listing: Decodable { var total: Int }
            #expect(try await kb.send(.get, "/api/knowledge-base/files", token: adminA).json(Listing.self).total == 2)

            // Stats, for the admin's own tenant and, for the super_admin, any named one.
            let stats = try await kb.send(.get, "/api/admin/knowledge/stats", token: adminA)
            #expect(stats.status == 200, "\(stats.text)")
            let figures = try stats.json(Stats.self)
            #expect(figures.tenantId == tenantA.uuidString.lowercased())
            #expect(figures.documents == 2 && figures.completed == 2 && figures.pending == 0 && figures.failed == 0)
            #expect(figures.chunks == 2 && figures.totalBytes == "Our bakery opens at seven.".utf8.count + "Croissants are baked fresh.".utf8.count)
            #expect(figures.lastProcessedAt != nil)
            let forA = try await kb.send(.get, "/api/admin/knowledge/stats?tenant_id=\(tenantA)", token: superAdmin).json(Stats.self)
            #expect(forA.documents == 2 && forA.chunks == 2)
            let empty = try await kb.send(.get, "/api/admin/knowledge/stats", token: superAdmin).json(Stats.self)
            #expect(empty.tenantId == tenantB.uuidString.lowercased() && empty.documents == 0 && empty.chunks == 0 && empty.lastProcessedAt == nil)
        }
    }

    @Test func refusedUploadsStoreNothing() async throws {
        try await KnowledgeHarness.with { kb in
            let tenantA = try await kb.tenant()
            let tenantB = try await kb.tenant()
            let adminB = try await kb.token(tenantB, .admin)
            let cases: [(String, KnowledgeHarness.Answer, Int, String?)] = [
                ("another tenant", try await Self.adminUpload(kb, "x", tenant: tenantA, token: adminB), 404, "TENANT_NOT_FOUND"),
                ("a member", try await Self.adminUpload(kb, "x", token: try await kb.token(tenantB, .user)), 403, "ROLE_NOT_ALLOWED"),
                ("metadata not JSON", try await Self.adminUpload(kb, "x", metadata: "{nope", token: adminB), 422, "VALIDATION_ERROR"),
                ("metadata an array", try await Self.adminUpload(kb, "x", metadata: "[1]", token: adminB), 422, "VALIDATION_ERROR"),
                ("metadata too large", try await Self.adminUpload(kb, "x", metadata: "{\"a\":\"\(String(repeating: "b", count: 20_000))\"}", token: adminB), 422, nil),
                ("a lying file", try await Self.adminUpload(kb, "plain text", filename: "fake.pdf", token: adminB), 422, nil),
            ]
            for (name, answer, status, code) in cases {
                #expect(answer.status == status, "\(name): \(answer.text)")
                if let code { #expect(try answer.error().code == code, "\(name)") }
            }
            let noToken = try await kb.send(.post, "/api/admin/knowledge/upload")
            #expect(noToken.status == 401)
            #expect(try await kb.count("SELECT count(*)::int FROM knowledge_documents") == 0)
            #expect(kb.storedFiles().isEmpty)
            // Another tenant's stats are a tenant that does not exist.
            #expect(try await kb.send(.get, "/api/admin/knowledge/stats?tenant_id=\(tenantA)", token: adminB).status == 404)
            #expect(try await kb.send(.get, "/api/admin/knowledge/stats", token: try await kb.token(tenantB, .user)).status == 403)
        }
    }

    /// Tenants A and B with an admin each; A's documents `first` and `second`, B's `theirs`, processed.
    struct TwoTenants {
        var tenantA: UUID
        var tenantB: UUID
        var adminA: String
        var adminB: String
        var first: KnowledgeHarness.StatusView
        var second: KnowledgeHarness.StatusView
        var theirs: KnowledgeHarness.StatusView

        init(_ kb: KnowledgeHarness) async throws {
            tenantA = try await kb.tenant()
            tenantB = try await kb.tenant()
            adminA = try await kb.token(tenantA, .admin)
            adminB = try await kb.token(tenantB, .admin)
            first = try await kb.ingest(Array("Bread is baked daily.".utf8), filename: "a.txt", token: adminA)
            second = try await kb.ingest(Array("Cakes need a day's notice.".utf8), filename: "b.txt", token: adminA)
            theirs = try await kb.ingest(Array("Other tenant's notes.".utf8), filename: "c.txt", token: adminB)
        }
    }

    @Test func ingestQueuesTheNamedDocumentsAgainAllOrNothing() async throws {
        try await KnowledgeHarness.with { kb in
            let two = try await TwoTenants(kb)
            let (tenantA, tenantB, adminA, adminB, first, second, theirs) = (two.tenantA, two.tenantB, two.adminA, two.adminB, two.first, two.second, two.theirs)

            // One id that is not tenant A's (B's, or none at all): 404, nothing queued.
            for stranger in [theirs.id, UUID().uuidString] {
                let mixed = try await Self.send(kb, .post, "/api/admin/knowledge/ingest", token: adminA, body: ["document_ids": [first.id, stranger]])
                #expect(mixed.status == 404, "\(mixed.text)")
                #expect(try mixed.error().code == "FILE_NOT_FOUND")
            }
            #expect(try await kb.count("SELECT count(*)::int FROM knowledge_documents WHERE status = 'completed' AND attempts = 1") == 3)
            // Bad bodies: 422 or 400, nothing queued.
            let bad: [(String, [String: Any], Int)] = [
                ("no ids", ["document_ids": [String]()], 422),
                ("not a uuid", ["document_ids": ["nope"]], 422),
                ("too many", ["document_ids": (0..<101).map { _ in UUID().uuidString }], 422),
                ("missing", ["tenant_id": tenantA.uuidString], 422),
                ("tenant not a uuid", ["tenant_id": "x", "document_ids": [first.id]], 404),
            ]
            for (name, body, status) in bad {
                let answer = try await Self.send(kb, .post, "/api/admin/knowledge/ingest", token: adminA, body: body)
                #expect(answer.status == status, "\(name): \(answer.text)")
            }
            var headers = HTTPFields()
            headers[.contentType] = "application/json"
            #expect(try await kb.send(.post, "/api/admin/knowledge/ingest", token: adminA, headers: headers, body: ByteBuffer(string: "{")).status == 400)
            #expect(try await kb.send(.post, "/api/admin/knowledge/ingest", token: try await kb.token(tenantA, .user), headers: headers, body: try Self.json(["document_ids": [first.id]])).status == 403)
            #expect(try await kb.count("SELECT count(*)::int FROM knowledge_documents WHERE status = 'completed' AND attempts = 1") == 3)

            // Both of A's (one named twice): queued again and processed once more.
            let ingest = try await Self.send(kb, .post, "/api/admin/knowledge/ingest", token: adminA, body: ["document_ids": [first.id, second.id, first.id.uppercased()]])
            #expect(ingest.status == 202, "\(ingest.text)")
            let ingested = try ingest.json(Ingested.self)
            #expect(Set(ingested.queued) == [first.id, second.id] && ingested.alreadyQueued.isEmpty && ingested.tenantId == tenantA.uuidString.lowercased())
            #expect(try await kb.finished(first.id, token: adminA).status == "completed")
            #expect(try await kb.finished(second.id, token: adminA).status == "completed")
            #expect(try await kb.count("SELECT count(*)::int FROM knowledge_chunks WHERE tenant_id = \(tenantA)") == 2)
            // A super_admin names tenant B's document with tenant B.
            let superAdmin = try await kb.token(tenantA, .superAdmin)
            let forB = try await Self.send(kb, .post, "/api/admin/knowledge/ingest", token: superAdmin, body: ["tenant_id": tenantB.uuidString, "document_ids": [theirs.id]])
            #expect(forB.status == 202, "\(forB.text)")
            #expect(try await kb.finished(theirs.id, token: adminB).status == "completed")
        }
    }

    @Test func deleteRemovesTheNamedDocumentsAllOrNothing() async throws {
        try await KnowledgeHarness.with { kb in
            let two = try await TwoTenants(kb)
            let (tenantA, tenantB, adminA, adminB, first, second, theirs) = (two.tenantA, two.tenantB, two.adminA, two.adminB, two.first, two.second, two.theirs)
            let kept = try await kb.ingest(Array("Pies on Sundays.".utf8), filename: "k.txt", token: adminA)

            let mixed = try await Self.send(kb, .delete, "/api/admin/knowledge/documents", token: adminA, body: ["document_ids": [first.id, theirs.id]])
            #expect(mixed.status == 404, "\(mixed.text)")
            let foreign = try await Self.send(kb, .delete, "/api/admin/knowledge/documents", token: adminB, body: ["tenant_id": tenantA.uuidString, "document_ids": [first.id]])
            #expect(foreign.status == 404)
            #expect(try await Self.send(kb, .delete, "/api/admin/knowledge/documents", token: adminA, body: ["document_ids": [String]()]).status == 422)
            #expect(try await kb.count("SELECT count(*)::int FROM knowledge_documents") == 4)
            #expect(try await kb.count("SELECT count(*)::int FROM knowledge_chunks") == 4)
            #expect(kb.storedFiles().count == 4)

            let deleted = try await Self.send(kb, .delete, "/api/admin/knowledge/documents", token: adminA, body: ["document_ids": [first.id, second.id]])
            #expect(deleted.status == 200, "\(deleted.text)")
            #expect(Set(try deleted.json(Deleted.self).deleted) == [first.id, second.id])
            #expect(try await kb.count("SELECT count(*)::int FROM knowledge_documents WHERE tenant_id = \(tenantA)") == 1)
            #expect(try await kb.count("SELECT count(*)::int FROM knowledge_chunks WHERE tenant_id = \(tenantA)") == 1)
            #expect(kb.storedFiles() == [KnowledgeDocument.storageKey(for: UUID(uuidString: kept.id)!), KnowledgeDocument.storageKey(for: UUID(uuidString: theirs.id)!)].sorted())
            // Gone now: the same ids again are 404.
            #expect(try await Self.send(kb, .delete, "/api/admin/knowledge/documents", token: adminA, body: ["document_ids": [first.id]]).status == 404)
            // A super_admin deletes tenant B's.
            let superAdmin = try await kb.token(tenantA, .superAdmin)
            let forB = try await Self.send(kb, .delete, "/api/admin/knowledge/documents", token: superAdmin, body: ["tenant_id": tenantB.uuidString, "document_ids": [theirs.id]])
            #expect(forB.status == 200, "\(forB.text)")
            #expect(try await kb.count("SELECT count(*)::int FROM knowledge_documents WHERE tenant_id = \(tenantB)") == 0)
        }
    }
}
