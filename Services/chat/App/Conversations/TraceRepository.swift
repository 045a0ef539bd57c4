import Foundation
import Logging
import PostgresNIO
import ServiceCore

/// One answered (or failed) message as measured: what `GET /api/admin/tenants/{id}/traces` lists.
struct TraceView: Codable, Sendable {
    @LowercaseUUID var id: UUID
    @LowercaseOptionalUUID var conversationId: UUID?
    @LowercaseOptionalUUID var messageId: UUID?
    var responder: String
    var status: String
    var firstTokenMs: Int?
    var totalMs: Int
    var chunks: [TracedChunk]
    var words: Int
    var error: String?
    var createdAt: Date
}

/// The traces `ConversationRepository.finish` writes, read per tenant, newest first.
protocol TraceRepository: Sendable {
    func traces(tenantID: UUID, limit: Int, offset: Int, logger: Logger) async throws -> (items: [TraceView], total: Int)
}

struct PostgresTraceRepository: TraceRepository {
    let client: Database

    func traces(tenantID: UUID, limit: Int, offset: Int, logger: Logger) async throws -> (items: [TraceView], total: Int) {
        let rows = try await client.query(
            """
            SELECT id, conversation_id, message_id, responder, status, first_token_ms, total_ms, chunks::text, words, error, created_at
            FROM chat_traces WHERE tenant_id = \(tenantID)
            ORDER BY created_at DESC, id LIMIT \(limit) OFFSET \(offset)
            """,
            logger: logger
        )
        let items = try rows.decode((UUID, UUID?, UUID?, String, String, Int?, Int, String, Int, String?, Date).self).map { row in
            TraceView(
                id: row.0, conversationId: row.1, messageId: row.2, responder: row.3, status: row.4, firstTokenMs: row.5, totalMs: row.6,
                chunks: try JSONCoding.decoder.decode([TracedChunk].self, from: Data(row.7.utf8)), words: row.8, error: row.9, createdAt: row.10
            )
        }
        let total = try await client.query("SELECT count(*)::int FROM chat_traces WHERE tenant_id = \(tenantID)", logger: logger)
            .decode(Int.self).first ?? 0
        return (items, total)
    }
}
