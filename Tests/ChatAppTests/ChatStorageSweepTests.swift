import Foundation
import InternalAPI
import Logging
import NIOCore
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

@testable import ChatApp

/// chat's storage sweep against a real chat database and a real storage directory: old files no
/// row names go, young ones and live ones stay; old rows whose file vanished are closed (the
/// document fails and loses its chunks, the attachment is marked deleted), young ones wait.
@Suite("chat storage sweep")
struct ChatStorageSweepTests {
    let logger = Logger(label: "test")

    @Test func removesOrphanFilesAndClosesRowsWithoutFiles() async throws {
        let config = try await TestPostgres.freshDatabase("chatsweep")
        let directory = NSTemporaryDirectory() + "chat-sweep-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await TestPostgres.withDatabase(config) { database in
            try await MigrationRunner(ChatMigrations.all).run(on: database.client, logger: logger)
            let storage = try FileSystemAssetStorage(directory: directory)
            let repository = PostgresKnowledgeRepository(client: database, outbox: Outbox(routes: [KnowledgeBaseUploaded.type: []]))
            let tenant = UUID()
            let old = Date().addingTimeInterval(-3_600)

            /// A completed document with one chunk; its file stored unless `withFile` is false.
            func document(withFile: Bool, createdAt: Date) async throws -> UUID {
                let id = UUID()
                let key = KnowledgeDocument.storageKey(for: id)
                if withFile { try await storage.put(key, ByteBuffer(string: "Bread")) }
                try await repository.insert(
                    KnowledgeDocument(
                        id: id, tenantID: tenant, filename: "a.txt", contentType: "text/plain", sizeBytes: 5, sha256: "x", storageKey: key,
                        status: .pending, chunkCount: 0, processingError: nil, createdAt: Date()
                    ),
                    uploadedBy: "test", logger: logger
                )
                try await database.query(
                    """
                    UPDATE knowledge_documents SET status = 'completed', chunk_count = 1, created_at = \(createdAt) WHERE id = \(id)
                    """,
                    logger: logger
                )
                try await database.query(
                    """
                    INSERT INTO knowledge_chunks (id, tenant_id, document_id, position, content, search_config)
                    VALUES (gen_random_uuid(), \(tenant), \(id), 0, 'Bread', 'simple')
                    """,
                    logger: logger
                )
                return id
            }
            try await database.query(
                "INSERT INTO widget_sessions (id, tenant_id, expires_at) VALUES ('sess-sweep', \(tenant), now() + INTERVAL '1 day')", logger: logger
            )
            /// An attachment of the session; its file stored unless `withFile` is false.
            func attachment(withFile: Bool, deleted: Bool, createdAt: Date) async throws -> UUID {
                let id = UUID()
                if withFile { try await storage.put(Attachment.storageKey(for: id), ByteBuffer(string: "hello")) }
                try await database.query(
                    """
                    INSERT INTO attachments (id, tenant_id, session_id, name, mime_type, size_bytes, sha256, created_at, deleted_at)
                    VALUES (\(id), \(tenant), 'sess-sweep', 'a.txt', 'text/plain', 5, 'x', \(createdAt), \(deleted ? createdAt : nil))
                    """,
                    logger: logger
                )
                return id
            }
            func age(_ key: String) throws {
                try FileManager.default.setAttributes([.modificationDate: old], ofItemAtPath: directory + "/" + key)
            }

            // Files.
            let liveDocument = try await document(withFile: true, createdAt: old)
            try age(KnowledgeDocument.storageKey(for: liveDocument))
            let orphanDocumentFile = KnowledgeDocument.storageKey(for: UUID())
            try await storage.put(orphanDocumentFile, ByteBuffer(string: "crashed before its row"))
            try age(orphanDocumentFile)
            let youngOrphan = KnowledgeDocument.storageKey(for: UUID())
            try await storage.put(youngOrphan, ByteBuffer(string: "its upload is still running"))
            let liveAttachment = try await attachment(withFile: true, deleted: false, createdAt: old)
            try age(Attachment.storageKey(for: liveAttachment))
            let deletedAttachment = try await attachment(withFile: true, deleted: true, createdAt: old)
            try age(Attachment.storageKey(for: deletedAttachment))
            let temporary = FileSystemAssetStorage.temporaryPrefix + "interrupted"
            try Data("half".utf8).write(to: URL(fileURLWithPath: directory + "/" + temporary))
            try age(temporary)
            let stranger = "notes-of-someone-else"
            try Data("x".utf8).write(to: URL(fileURLWithPath: directory + "/" + stranger))
            try age(stranger)
            // Rows whose file vanished: old ones, and young ones that must wait.
            let lostDocument = try await document(withFile: false, createdAt: old)
            let youngLostDocument = try await document(withFile: false, createdAt: Date())
            let lostAttachment = try await attachment(withFile: false, deleted: false, createdAt: old)
            let youngLostAttachment = try await attachment(withFile: false, deleted: false, createdAt: Date())

            let sweep = ChatStorageSweep(storage: storage, database: database, grace: .seconds(600), interval: .seconds(3_600), logger: logger)
            let outcome = await sweep.sweepOnce()
            #expect(outcome == .init(filesRemoved: 3, documentsFailed: 1, attachmentsClosed: 1))

            let left = Set(try await storage.list().map(\.key))
            #expect(
                left == [
                    KnowledgeDocument.storageKey(for: liveDocument), youngOrphan, Attachment.storageKey(for: liveAttachment), stranger,
                ]
            )
            func status(_ id: UUID) async throws -> (String, String?, Int) {
                let row = try await database.query(
                    "SELECT status, processing_error, (SELECT count(*)::int FROM knowledge_chunks WHERE document_id = \(id)) FROM knowledge_documents WHERE id = \(id)",
                    logger: logger
                ).decode((String, String?, Int).self)[0]
                return row
            }
            #expect(try await status(liveDocument) == ("completed", nil, 1))
            #expect(try await status(lostDocument) == ("failed", ChatStorageSweep.missingFileReason, 0))
            #expect(try await status(youngLostDocument) == ("completed", nil, 1))
            func deleted(_ id: UUID) async throws -> Bool {
                try await database.query("SELECT deleted_at IS NOT NULL FROM attachments WHERE id = \(id)", logger: logger).decode(Bool.self)[0]
            }
            #expect(try await deleted(liveAttachment) == false)
            #expect(try await deleted(lostAttachment) == true)
            #expect(try await deleted(youngLostAttachment) == false)

            // A second pass finds nothing more; an empty directory closes no rows.
            #expect(await sweep.sweepOnce() == .init())
            let emptyDirectory = directory + "-empty"
            defer { try? FileManager.default.removeItem(atPath: emptyDirectory) }
            let elsewhere = ChatStorageSweep(
                storage: try FileSystemAssetStorage(directory: emptyDirectory), database: database, grace: .seconds(600), interval: .seconds(3_600),
                logger: logger
            )
            #expect(await elsewhere.sweepOnce() == .init())
            #expect(try await status(liveDocument) == ("completed", nil, 1))
        }
    }
}
