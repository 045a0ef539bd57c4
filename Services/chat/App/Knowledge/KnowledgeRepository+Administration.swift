import Foundation
import Logging
import PostgresNIO
import ServiceCore

/// A tenant's knowledge base in figures (seed 001's `GET /api/admin/knowledge/stats`).
struct KnowledgeStats: Codable, Sendable {
    var tenantId: String
    var documents: Int
    var pending: Int
    var processing: Int
    var completed: Int
    var failed: Int
    /// Chunks stored (what retrieval searches).
    var chunks: Int
    var totalBytes: Int64
    var lastProcessedAt: Date?
}

extension PostgresKnowledgeRepository {
    func requeue(ids: [UUID], tenantID: UUID, logger: Logger) async throws -> (requeued: [UUID], inProgress: [UUID])? {
        try await client.transaction(logger: logger) { connection in
            // Locked, so a worker's completion or a concurrent delete waits until this commits.
            let found = try await connection.query(
                "SELECT id, status FROM knowledge_documents WHERE tenant_id = \(tenantID) AND id = ANY(\(ids)) FOR UPDATE", logger: logger
            ).collect().map { try $0.decode((UUID, String).self) }
            guard found.count == ids.count else { return nil }
            let requeueable = found.filter { $0.1 == "failed" || $0.1 == "completed" }.map { $0.0 }
            let inProgress = found.filter { $0.1 != "failed" && $0.1 != "completed" }.map { $0.0 }
            if !requeueable.isEmpty {
                try await connection.query(
                    """
                    UPDATE knowledge_documents SET \(unescaped: Self.requeued)
                    WHERE id = ANY(\(requeueable))
                    """,
                    logger: logger
                )
                try await connection.query("SELECT pg_notify(\(Self.channel), '')", logger: logger)
            }
            return (requeueable, inProgress)
        }
    }

    func delete(ids: [UUID], tenantID: UUID, logger: Logger) async throws -> [String]? {
        try await client.transaction(logger: logger) { connection in
            let found = try await connection.query(
                "SELECT id FROM knowledge_documents WHERE tenant_id = \(tenantID) AND id = ANY(\(ids)) FOR UPDATE", logger: logger
            ).collect().map { try $0.decode(UUID.self) }
            guard found.count == ids.count else { return nil }
            // The chunks go with the rows (ON DELETE CASCADE).
            return try await connection.query(
                "DELETE FROM knowledge_documents WHERE tenant_id = \(tenantID) AND id = ANY(\(ids)) RETURNING storage_key", logger: logger
            ).collect().map { try $0.decode(String.self) }
        }
    }

    func stats(tenantID: UUID, logger: Logger) async throws -> KnowledgeStats {
        let rows = try await client.query(
            """
            SELECT count(*)::int,
                   (count(*) FILTER (WHERE status = 'pending'))::int,
                   (count(*) FILTER (WHERE status = 'processing'))::int,
                   (count(*) FILTER (WHERE status = 'completed'))::int,
                   (count(*) FILTER (WHERE status = 'failed'))::int,
                   (SELECT coalesce(sum(chunks), 0) FROM knowledge_search_configs WHERE tenant_id = \(tenantID))::int,
                   COALESCE(sum(size_bytes), 0)::bigint,
                   max(processed_at)
            FROM knowledge_documents WHERE tenant_id = \(tenantID)
            """,
            logger: logger
        ).decode((Int, Int, Int, Int, Int, Int, Int64, Date?).self)
        let row = rows[0]
        return KnowledgeStats(
            tenantId: tenantID.uuidString.lowercased(), documents: row.0, pending: row.1, processing: row.2, completed: row.3, failed: row.4,
            chunks: row.5, totalBytes: row.6, lastProcessedAt: row.7
        )
    }
}
