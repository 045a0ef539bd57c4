import Foundation
import InternalAPI
import Logging
import PostgresNIO
import ServiceCore

/// One knowledge-base document as stored (its file is in `AssetStorage` under `storageKey`).
struct KnowledgeDocument: Sendable {
    enum Status: String, Codable, Sendable {
        case pending, processing, completed, failed
    }

    var id: UUID
    var tenantID: UUID
    var filename: String
    var contentType: String
    var sizeBytes: Int
    var sha256: String
    var storageKey: String
    var status: Status
    var chunkCount: Int
    var processingError: String?
    var createdAt: Date
    /// A JSON object the uploader attached (seed 001's `metadata`).
    var metadata: JSONValue? = nil

    /// The storage key of a document's file: never anything the client chose.
    static func storageKey(for id: UUID) -> String { "kb-\(id.uuidString.lowercased())" }
}

/// A job a worker holds: the document and the lease that proves it still holds it.
struct ClaimedDocument: Sendable {
    var id: UUID
    var tenantID: UUID
    var filename: String
    var storageKey: String
    var attempts: Int
    var leaseToken: UUID
}

/// The knowledge base's documents and chunks, and the ingestion queue kept on the documents.
protocol KnowledgeRepository: Sendable {
    func insert(_ document: KnowledgeDocument, uploadedBy: String, logger: Logger) async throws
    func list(tenantID: UUID, paging: Paging, logger: Logger) async throws -> (documents: [KnowledgeDocument], total: Int)
    func find(id: UUID, tenantID: UUID, logger: Logger) async throws -> KnowledgeDocument?
    /// Removes the document and its chunks; its storage key, or nil when there was none.
    func delete(id: UUID, tenantID: UUID, logger: Logger) async throws -> String?
    /// Queues a failed or completed document again; nil when there is none, the document as it
    /// was when it is still queued or being processed.
    func requeue(id: UUID, tenantID: UUID, logger: Logger) async throws -> (document: KnowledgeDocument, requeued: Bool)?

    // Seed 001's administration, over several documents at once: all of `ids` must be the
    // tenant's, or nothing is done (nil).
    /// Queues the failed and completed ones of `ids` again; the others are already queued or in progress.
    func requeue(ids: [UUID], tenantID: UUID, logger: Logger) async throws -> (requeued: [UUID], inProgress: [UUID])?
    /// Removes the documents and their chunks; their storage keys.
    func delete(ids: [UUID], tenantID: UUID, logger: Logger) async throws -> [String]?
    func stats(tenantID: UUID, logger: Logger) async throws -> KnowledgeStats

    /// Fails the jobs whose last lease ran out with no attempt left; claims up to `limit` due jobs.
    func claim(limit: Int, lease: Duration, maxAttempts: Int, logger: Logger) async throws -> [ClaimedDocument]
    /// Writes the chunks and marks the job completed, if `job`'s lease is still the document's;
    /// false when it is not (the document was deleted, or the lease passed to another worker).
    func complete(_ job: ClaimedDocument, chunks: [String], searchConfig: String, logger: Logger) async throws -> Bool
    /// Records a failure: for good when `permanent` or no attempt is left, else due again after `retryAfter`.
    func fail(_ job: ClaimedDocument, reason: String, permanent: Bool, maxAttempts: Int, retryAfter: Duration, logger: Logger) async throws
    /// Brings the planner's statistics of the knowledge tables up to date when `added` chunks are
    /// enough to make them stale (autovacuum's own rule); true when it did.
    func refreshStatistics(added: Int, logger: Logger) async throws -> Bool
}

struct PostgresKnowledgeRepository: KnowledgeRepository {
    let client: Database
    let outbox: Outbox

    /// The notification channel that wakes the ingestion workers of every replica.
    static let channel = "knowledge_jobs"

    private static let columns =
        "id, tenant_id, filename, content_type, size_bytes, sha256, storage_key, status, chunk_count, processing_error, created_at, metadata::text"

    func insert(_ document: KnowledgeDocument, uploadedBy: String, logger: Logger) async throws {
        let metadata = try document.metadata.map { String(decoding: try JSONCoding.encoder.encode($0), as: UTF8.self) }
        try await client.query(
            """
            WITH inserted AS (
                INSERT INTO knowledge_documents (id, tenant_id, filename, content_type, size_bytes, sha256, storage_key, status, uploaded_by, metadata)
                VALUES (\(document.id), \(document.tenantID), \(document.filename), \(document.contentType), \(document.sizeBytes),
                        \(document.sha256), \(document.storageKey), 'pending', \(uploadedBy), \(metadata)::jsonb)
                RETURNING id
            )
            SELECT pg_notify(\(Self.channel), '') FROM inserted
            """,
            logger: logger
        )
    }

    func list(tenantID: UUID, paging: Paging, logger: Logger) async throws -> (documents: [KnowledgeDocument], total: Int) {
        let rows = try await client.query(
            """
            SELECT \(unescaped: Self.columns) FROM knowledge_documents WHERE tenant_id = \(tenantID)
            ORDER BY created_at DESC, id LIMIT \(paging.limit) OFFSET \(paging.offset)
            """,
            logger: logger
        )
        let total = try await client.query("SELECT count(*)::int FROM knowledge_documents WHERE tenant_id = \(tenantID)", logger: logger)
            .decode(Int.self).first ?? 0
        return (try Self.documents(rows), total)
    }

    func find(id: UUID, tenantID: UUID, logger: Logger) async throws -> KnowledgeDocument? {
        try Self.documents(
            try await client.query(
                "SELECT \(unescaped: Self.columns) FROM knowledge_documents WHERE id = \(id) AND tenant_id = \(tenantID)", logger: logger
            )
        ).first
    }

    func delete(id: UUID, tenantID: UUID, logger: Logger) async throws -> String? {
        // The chunks go with the row (ON DELETE CASCADE); a worker still on it finds no row to complete.
        try await client.query(
            "DELETE FROM knowledge_documents WHERE id = \(id) AND tenant_id = \(tenantID) RETURNING storage_key", logger: logger
        ).decode(String.self).first
    }

    /// What a document queued again is set to: a fresh job, as after its upload.
    static let requeued = """
        status = 'pending', attempts = 0, next_attempt_at = now(), lease_token = NULL, lease_expires_at = NULL,
        processing_error = NULL, updated_at = now()
        """

    func requeue(id: UUID, tenantID: UUID, logger: Logger) async throws -> (document: KnowledgeDocument, requeued: Bool)? {
        let updated = try Self.documents(
            try await client.query(
                """
                WITH requeued AS (
                    UPDATE knowledge_documents SET \(unescaped: Self.requeued)
                    WHERE id = \(id) AND tenant_id = \(tenantID) AND status IN ('failed', 'completed')
                    RETURNING \(unescaped: Self.columns)
                ), notified AS (
                    SELECT pg_notify(\(Self.channel), '') FROM requeued
                )
                SELECT requeued.* FROM requeued, (SELECT count(*) FROM notified) AS n
                """,
                logger: logger
            )
        )
        if let document = updated.first { return (document, true) }
        return try await find(id: id, tenantID: tenantID, logger: logger).map { ($0, false) }
    }

    func claim(limit: Int, lease: Duration, maxAttempts: Int, logger: Logger) async throws -> [ClaimedDocument] {
        let leaseSeconds = Double(lease.components.seconds) + Double(lease.components.attoseconds) / 1e18
        // A job whose worker died on its last attempt: nobody will finish it, so it ends here.
        try await client.query(
            """
            UPDATE knowledge_documents
            SET status = 'failed', lease_token = NULL, lease_expires_at = NULL, updated_at = now(),
                processing_error = 'processing stopped after ' || attempts || ' attempts'
                    || COALESCE(' (last error: ' || processing_error || ')', ' (the worker was interrupted each time)')
            WHERE status = 'processing' AND lease_expires_at < now() AND attempts >= \(maxAttempts)
            """,
            logger: logger
        )
        let token = UUID()
        let rows = try await client.query(
            """
            UPDATE knowledge_documents d
            SET status = 'processing', attempts = d.attempts + 1, lease_token = \(token),
                lease_expires_at = now() + \(leaseSeconds) * INTERVAL '1 second', updated_at = now()
            WHERE d.id IN (
                SELECT id FROM knowledge_documents
                WHERE ((status = 'pending' AND next_attempt_at <= now()) OR (status = 'processing' AND lease_expires_at < now()))
                    AND attempts < \(maxAttempts)
                ORDER BY next_attempt_at, id
                LIMIT \(limit)
                FOR UPDATE SKIP LOCKED
            )
            RETURNING d.id, d.tenant_id, d.filename, d.storage_key, d.attempts
            """,
            logger: logger
        )
        return try rows.decode((UUID, UUID, String, String, Int).self).map { id, tenantID, filename, key, attempts in
            ClaimedDocument(id: id, tenantID: tenantID, filename: filename, storageKey: key, attempts: attempts, leaseToken: token)
        }
    }

    func complete(_ job: ClaimedDocument, chunks: [String], searchConfig: String, logger: Logger) async throws -> Bool {
        let outbox = self.outbox
        return try await client.transaction(logger: logger) { connection in
            // The row lock keeps a delete (or a reprocess) out until this commits.
            let held = try await connection.query(
                """
                SELECT 1 FROM knowledge_documents
                WHERE id = \(job.id) AND lease_token = \(job.leaseToken) AND status = 'processing' FOR UPDATE
                """,
                logger: logger
            ).collect()
            guard !held.isEmpty else { return false }
            try await connection.query("DELETE FROM knowledge_chunks WHERE document_id = \(job.id)", logger: logger)
            let batch = 500
            for start in stride(from: 0, to: chunks.count, by: batch) {
                let end = min(start + batch, chunks.count)
                let positions = Array(start..<end)
                let contents = Array(chunks[start..<end])
                try await connection.query(
                    """
                    INSERT INTO knowledge_chunks (id, tenant_id, document_id, position, content, search_config)
                    SELECT gen_random_uuid(), \(job.tenantID), \(job.id), c.position, c.content, \(searchConfig)::regconfig
                    FROM unnest(\(positions)::int[], \(contents)::text[]) AS c(position, content)
                    """,
                    logger: logger
                )
            }
            try await connection.query(
                """
                UPDATE knowledge_documents
                SET status = 'completed', chunk_count = \(chunks.count), processing_error = NULL, processed_at = now(), updated_at = now(),
                    lease_token = NULL, lease_expires_at = NULL
                WHERE id = \(job.id)
                """,
                logger: logger
            )
            // The tenant's first completed document: tenancy's onboarding step, once per tenant.
            let first = try await connection.query(
                """
                INSERT INTO knowledge_base_announced (tenant_id, document_id) VALUES (\(job.tenantID), \(job.id))
                ON CONFLICT (tenant_id) DO NOTHING RETURNING tenant_id
                """,
                logger: logger
            ).collect()
            if !first.isEmpty {
                let event = try EventEnvelope(
                    type: KnowledgeBaseUploaded.type, source: "chat", payload: KnowledgeBaseUploaded(tenantId: job.tenantID, documentId: job.id)
                )
                try await outbox.enqueue(event, on: connection, logger: logger)
            }
            return true
        }
    }

    /// Autovacuum analyzes a table once `autovacuum_analyze_threshold` (50) + 10 % of its rows
    /// have changed, but only at its next round (up to a minute later, `autovacuum_naptime`). Until
    /// then retrieval is planned with statistics that do not know the new chunks and lexemes: after
    /// a 16,000-chunk upload into a new installation, each question took ~80 ms instead of ~10 ms
    /// for that minute (bench/README.md). So the document that crosses the same threshold analyzes
    /// at once (a sample of at most 30,000 rows per table: ~0.1 s, off the event loops).
    func refreshStatistics(added: Int, logger: Logger) async throws -> Bool {
        let known = try await client.query(
            "SELECT greatest(reltuples, 0)::float8 FROM pg_class WHERE oid = 'knowledge_chunks'::regclass", logger: logger
        ).decode(Double.self).first ?? 0
        guard Double(added) >= 50 + 0.1 * known else { return false }
        try await client.query("ANALYZE knowledge_chunks, knowledge_lexemes, knowledge_search_configs", logger: logger)
        return true
    }

    func fail(_ job: ClaimedDocument, reason: String, permanent: Bool, maxAttempts: Int, retryAfter: Duration, logger: Logger) async throws {
        let final = permanent || job.attempts >= maxAttempts
        let retrySeconds = Double(retryAfter.components.seconds)
        try await client.query(
            """
            UPDATE knowledge_documents
            SET status = \(final ? "failed" : "pending"), processing_error = \(reason), updated_at = now(),
                chunk_count = CASE WHEN \(final) THEN 0 ELSE chunk_count END,
                next_attempt_at = now() + \(retrySeconds) * INTERVAL '1 second', lease_token = NULL, lease_expires_at = NULL
            WHERE id = \(job.id) AND lease_token = \(job.leaseToken) AND status = 'processing'
            """,
            logger: logger
        )
        if final {
            // A failed document keeps no chunks from an earlier run.
            try await client.query(
                "DELETE FROM knowledge_chunks WHERE document_id = \(job.id) AND NOT EXISTS (SELECT 1 FROM knowledge_documents WHERE id = \(job.id) AND status <> 'failed')",
                logger: logger
            )
        }
    }

    static func documents(_ rows: QueryRows) throws -> [KnowledgeDocument] {
        try rows.decode((UUID, UUID, String, String, Int, String, String, String, Int, String?, Date, String?).self).map {
            id, tenantID, filename, contentType, size, sha256, key, status, chunks, error, created, metadata in
            KnowledgeDocument(
                id: id, tenantID: tenantID, filename: filename, contentType: contentType, sizeBytes: size, sha256: sha256, storageKey: key,
                status: KnowledgeDocument.Status(rawValue: status) ?? .failed, chunkCount: chunks, processingError: error, createdAt: created,
                metadata: metadata.flatMap { try? JSONCoding.decoder.decode(JSONValue.self, from: Data($0.utf8)) }
            )
        }
    }
}
