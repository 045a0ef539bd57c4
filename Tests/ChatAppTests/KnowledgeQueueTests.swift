import Foundation
import InternalAPI
import Logging
import NIOCore
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

@testable import ChatApp

/// The ingestion queue itself, against a real chat database: several workers share it and each
/// document is processed once; a document whose worker died (claimed and abandoned) is finished
/// by another once the lease runs out; one that keeps dying stops after its attempts.
@Suite("chat knowledge queue")
struct KnowledgeQueueTests {
    struct Queue {
        let database: Database
        let repository: PostgresKnowledgeRepository
        let storage: FileSystemAssetStorage
        let tenant = UUID()

        func worker(lease: Duration = .seconds(60), maxAttempts: Int = 3, batchSize: Int = 2) -> KnowledgeIngestionWorker {
            KnowledgeIngestionWorker(
                repository: repository, storage: storage,
                extractor: TextExtractor(pdf: PDFText(executable: "pdftotext", timeout: .seconds(10), maxTextBytes: 1 << 20), maxTextBytes: 1 << 20),
                language: { _, _ in "en" }, database: database,
                settings: .init(batchSize: batchSize, lease: lease, maxAttempts: maxAttempts), logger: Logger(label: "test")
            )
        }

        /// A pending text document, its file stored as an upload leaves it.
        func enqueue(_ text: String) async throws -> UUID {
            let id = UUID()
            let document = KnowledgeDocument(
                id: id, tenantID: tenant, filename: "doc.txt", contentType: "text/plain", sizeBytes: text.utf8.count, sha256: "x",
                storageKey: KnowledgeDocument.storageKey(for: id), status: .pending, chunkCount: 0, processingError: nil, createdAt: Date()
            )
            try await storage.put(document.storageKey, ByteBuffer(string: text))
            try await repository.insert(document, uploadedBy: "test", logger: Logger(label: "test"))
            return id
        }

        func row(_ id: UUID) async throws -> (status: String, attempts: Int, chunks: Int, error: String?) {
            let rows = try await database.query(
                "SELECT status, attempts, chunk_count, processing_error FROM knowledge_documents WHERE id = \(id)", logger: Logger(label: "test")
            ).decode((String, Int, Int, String?).self)
            let row = rows[0]
            return (row.0, row.1, row.2, row.3)
        }
    }

    static func withQueue(_ body: (Queue) async throws -> Void) async throws {
        let config = try await TestPostgres.freshDatabase("kbqueue")
        let directory = NSTemporaryDirectory() + "kb-queue-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try await TestPostgres.withDatabase(config) { database in
            try await MigrationRunner(ChatMigrations.all).run(on: database.client, logger: Logger(label: "test"))
            // No subscriber: the onboarding event is not what this suite is about.
            let repository = PostgresKnowledgeRepository(client: database, outbox: Outbox(routes: [KnowledgeBaseUploaded.type: []]))
            try await body(Queue(database: database, repository: repository, storage: try FileSystemAssetStorage(directory: directory)))
        }
    }

    @Test func twoWorkersProcessEachDocumentOnce() async throws {
        try await Self.withQueue { queue in
            var ids: [UUID] = []
            for index in 0..<12 { ids.append(try await queue.enqueue("Document number \(index) about bread and cakes.")) }
            let first = queue.worker()
            let second = queue.worker()
            @Sendable func drain(_ worker: KnowledgeIngestionWorker) async throws -> Int {
                var taken = 0
                while true {
                    let batch = try await worker.workOnDueBatch()
                    if batch == 0 { return taken }
                    taken += batch
                }
            }
            async let a = drain(first)
            async let b = drain(second)
            let (takenA, takenB) = try await (a, b)
            #expect(takenA + takenB == 12)
            for id in ids {
                let row = try await queue.row(id)
                #expect(row.status == "completed" && row.attempts == 1 && row.chunks == 1, "\(row)")
            }
            let chunks = try await queue.database.query("SELECT count(*)::int FROM knowledge_chunks", logger: Logger(label: "test")).decode(Int.self)
            #expect(chunks.first == 12)
        }
    }

    @Test func anAbandonedJobIsFinishedByAnotherWorkerAfterItsLease() async throws {
        try await Self.withQueue { queue in
            let id = try await queue.enqueue("Opening hours are nine to five.")
            // A worker claims it and is "killed": it never completes nor fails the job.
            let abandoned = try await queue.repository.claim(limit: 5, lease: .milliseconds(800), maxAttempts: 3, logger: Logger(label: "test"))
            #expect(abandoned.map(\.id) == [id])
            let other = queue.worker()
            #expect(try await other.workOnDueBatch() == 0)
            #expect(try await queue.row(id).status == "processing")
            try await Task.sleep(for: .milliseconds(1_000))
            #expect(try await other.workOnDueBatch() == 1)
            let row = try await queue.row(id)
            #expect(row.status == "completed" && row.attempts == 2 && row.chunks == 1)
            // The first worker coming back late changes nothing: its lease is no longer the document's.
            let late = try await queue.repository.complete(abandoned[0], chunks: ["stale", "result"], searchConfig: "simple", logger: Logger(label: "test"))
            #expect(late == false)
            #expect(try await queue.row(id).chunks == 1)
        }
    }

    @Test func aJobThatKeepsDyingStopsAfterItsAttempts() async throws {
        try await Self.withQueue { queue in
            let id = try await queue.enqueue("Some text.")
            for _ in 0..<2 {
                let claimed = try await queue.repository.claim(limit: 1, lease: .milliseconds(300), maxAttempts: 2, logger: Logger(label: "test"))
                #expect(claimed.count == 1)
                try await Task.sleep(for: .milliseconds(400))
            }
            #expect(try await queue.worker(maxAttempts: 2).workOnDueBatch() == 0)
            let row = try await queue.row(id)
            #expect(row.status == "failed" && row.attempts == 2)
            #expect(row.error?.contains("stopped after 2 attempts") == true, "\(row.error ?? "")")
        }
    }

    @Test func aPassingFailureIsRetriedWithItsErrorRecorded() async throws {
        try await Self.withQueue { queue in
            let id = try await queue.enqueue("Some text.")
            var worker = queue.worker()
            worker = KnowledgeIngestionWorker(
                repository: worker.repository, storage: worker.storage, extractor: worker.extractor,
                language: { _, _ in throw FixtureError(description: "tenancy is away") }, database: worker.database, settings: worker.settings,
                logger: worker.logger
            )
            #expect(try await worker.workOnDueBatch() == 1)
            let row = try await queue.row(id)
            #expect(row.status == "pending" && row.attempts == 1)
            #expect(row.error?.contains("tenancy is away") == true)
            // Not due again before its backoff.
            #expect(try await queue.worker().workOnDueBatch() == 0)
        }
    }
}
