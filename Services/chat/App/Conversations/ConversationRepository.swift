import Foundation
import InternalAPI
import Logging
import PostgresNIO
import ServiceCore

struct Conversation: Sendable {
    var id: UUID
    var tenantID: UUID
    var sessionID: String
    var messageCount: Int
    var createdAt: Date
    var updatedAt: Date
}

/// A source the answer was composed from, as stored with the message and sent to the widget.
struct MessageSource: Codable, Sendable, Equatable {
    @LowercaseUUID var documentId: UUID
    @LowercaseUUID var chunkId: UUID
    var filename: String
    var score: Double
}

struct StoredMessage: Sendable {
    var id: UUID
    var conversationID: UUID?
    var role: String
    var content: String
    var status: String
    var sources: [MessageSource]
    var createdAt: Date
}

/// The assistant's side of one exchange, stored when the stream ends however it ended.
struct FinishedAnswer: Sendable {
    var tenantID: UUID
    var sessionID: String
    var conversationID: UUID
    /// The id the message is stored under (announced by the stream's `message.started` event).
    var messageID: UUID
    /// Nil when nothing was said (an error before the first word): only the trace is kept.
    var content: String?
    /// `complete`, `partial` (the client left or the responder failed mid-way) or `refused`.
    var status: String
    var sources: [MessageSource]
    var responder: String
    /// Counted towards the tenant's usage (`chat.message_answered`).
    var counts: Bool
    var trace: TraceRecord
}

/// What was measured about one answer.
struct TraceRecord: Sendable {
    var firstTokenMilliseconds: Int?
    var totalMilliseconds: Int
    var chunks: [TracedChunk]
    var words: Int
    var error: String?
}

struct TracedChunk: Codable, Sendable, Equatable {
    @LowercaseUUID var chunkId: UUID
    @LowercaseUUID var documentId: UUID
    var score: Double
}

/// Conversations and their messages; every query is scoped by tenant.
protocol ConversationRepository: Sendable {
    /// The session's conversation, created on its first message.
    func open(sessionID: String, tenantID: UUID, logger: Logger) async throws -> Conversation
    /// The conversation's last `limit` complete or partial messages, oldest first, but `excluding` (the message being answered).
    func recentTurns(conversationID: UUID, tenantID: UUID, excluding: UUID?, limit: Int, logger: Logger) async throws -> [ChatTurn]
    func addUserMessage(_ content: String, conversation: Conversation, logger: Logger) async throws -> UUID
    /// Stores the answer, its trace and (when it counts) its usage event in one transaction; the
    /// stored message's id, when a message was stored.
    func finish(_ answer: FinishedAnswer, logger: Logger) async throws -> UUID?
    func conversation(id: UUID, tenantID: UUID, logger: Logger) async throws -> Conversation?
    func conversations(tenantID: UUID, sessionID: String?, limit: Int, offset: Int, logger: Logger) async throws -> (items: [Conversation], total: Int)
    func messages(conversationID: UUID, tenantID: UUID, limit: Int, offset: Int, logger: Logger) async throws -> (items: [StoredMessage], total: Int)
}

struct PostgresConversationRepository: ConversationRepository {
    let client: Database
    let outbox: Outbox

    func open(sessionID: String, tenantID: UUID, logger: Logger) async throws -> Conversation {
        let rows = try await client.query(
            """
            INSERT INTO conversations (id, tenant_id, session_id) VALUES (\(UUID()), \(tenantID), \(sessionID))
            ON CONFLICT (session_id) DO UPDATE SET updated_at = now()
            RETURNING id, tenant_id, session_id, message_count, created_at, updated_at
            """,
            logger: logger
        )
        guard let conversation = try rows.decode((UUID, UUID, String, Int, Date, Date).self).map(Conversation.init).first,
            conversation.tenantID == tenantID
        else { throw AppError.internalError("A conversation could not be opened") }
        return conversation
    }

    func recentTurns(conversationID: UUID, tenantID: UUID, excluding: UUID?, limit: Int, logger: Logger) async throws -> [ChatTurn] {
        let rows = try await client.query(
            """
            SELECT role, content FROM (
                SELECT role, content, created_at, id FROM messages
                WHERE conversation_id = \(conversationID) AND tenant_id = \(tenantID) AND status IN ('complete', 'partial')
                  AND id IS DISTINCT FROM \(excluding)
                ORDER BY created_at DESC, id DESC LIMIT \(limit)
            ) recent ORDER BY created_at, id
            """,
            logger: logger
        )
        return try rows.decode((String, String).self).map { ChatTurn(role: $0, content: $1) }
    }

    func addUserMessage(_ content: String, conversation: Conversation, logger: Logger) async throws -> UUID {
        let id = UUID()
        try await client.query(
            """
            WITH message AS (
                INSERT INTO messages (id, session_id, tenant_id, conversation_id, role, content)
                VALUES (\(id), \(conversation.sessionID), \(conversation.tenantID), \(conversation.id), 'user', \(content))
            )
            UPDATE conversations SET message_count = message_count + 1, updated_at = now()
            WHERE id = \(conversation.id) AND tenant_id = \(conversation.tenantID)
            """,
            logger: logger
        )
        return id
    }

    func finish(_ answer: FinishedAnswer, logger: Logger) async throws -> UUID? {
        let outbox = outbox
        let sources = String(decoding: try JSONCoding.encoder.encode(answer.sources), as: UTF8.self)
        let chunks = String(decoding: try JSONCoding.encoder.encode(answer.trace.chunks), as: UTF8.self)
        return try await client.transaction(logger: logger) { connection in
            var messageID: UUID?
            if let content = answer.content {
                let id = answer.messageID
                messageID = id
                try await connection.query(
                    """
                    WITH message AS (
                        INSERT INTO messages (id, session_id, tenant_id, conversation_id, role, content, status, sources, responder)
                        VALUES (\(id), \(answer.sessionID), \(answer.tenantID), \(answer.conversationID), 'assistant', \(content),
                                \(answer.status), \(sources)::jsonb, \(answer.responder))
                    )
                    UPDATE conversations SET message_count = message_count + 1, updated_at = now()
                    WHERE id = \(answer.conversationID) AND tenant_id = \(answer.tenantID)
                    """,
                    logger: logger
                )
                if answer.counts {
                    let event = MessageAnswered(tenantId: answer.tenantID, messageId: id, conversationId: answer.conversationID, answeredAt: Date())
                    try await outbox.enqueue(try EventEnvelope(type: MessageAnswered.type, source: "chat", payload: event), on: connection, logger: logger)
                }
            }
            let trace = answer.trace
            try await connection.query(
                """
                INSERT INTO chat_traces (id, tenant_id, conversation_id, message_id, responder, status, first_token_ms, total_ms, chunks, words, error)
                VALUES (\(UUID()), \(answer.tenantID), \(answer.conversationID), \(messageID), \(answer.responder),
                        \(answer.content == nil ? "failed" : answer.status), \(trace.firstTokenMilliseconds), \(trace.totalMilliseconds),
                        \(chunks)::jsonb, \(trace.words), \(trace.error))
                """,
                logger: logger
            )
            return messageID
        }
    }

    func conversation(id: UUID, tenantID: UUID, logger: Logger) async throws -> Conversation? {
        let rows = try await client.query(
            """
            SELECT id, tenant_id, session_id, message_count, created_at, updated_at FROM conversations
            WHERE id = \(id) AND tenant_id = \(tenantID)
            """,
            logger: logger
        )
        return try rows.decode((UUID, UUID, String, Int, Date, Date).self).map(Conversation.init).first
    }

    func conversations(tenantID: UUID, sessionID: String?, limit: Int, offset: Int, logger: Logger) async throws -> (items: [Conversation], total: Int) {
        let rows = try await client.query(
            """
            SELECT id, tenant_id, session_id, message_count, created_at, updated_at, count(*) OVER ()::int FROM conversations
            WHERE tenant_id = \(tenantID) AND (\(sessionID)::text IS NULL OR session_id = \(sessionID))
            ORDER BY updated_at DESC, id LIMIT \(limit) OFFSET \(offset)
            """,
            logger: logger
        )
        let decoded = try rows.decode((UUID, UUID, String, Int, Date, Date, Int).self)
        let total = try await total(decoded.first?.6, offset: offset) {
            try await client.query(
                "SELECT count(*)::int FROM conversations WHERE tenant_id = \(tenantID) AND (\(sessionID)::text IS NULL OR session_id = \(sessionID))",
                logger: logger
            )
        }
        return (decoded.map { row in Conversation(id: row.0, tenantID: row.1, sessionID: row.2, messageCount: row.3, createdAt: row.4, updatedAt: row.5) }, total)
    }

    func messages(conversationID: UUID, tenantID: UUID, limit: Int, offset: Int, logger: Logger) async throws -> (items: [StoredMessage], total: Int) {
        let rows = try await client.query(
            """
            SELECT id, conversation_id, role, content, status, sources::text, created_at, count(*) OVER ()::int FROM messages
            WHERE conversation_id = \(conversationID) AND tenant_id = \(tenantID)
            ORDER BY created_at, id LIMIT \(limit) OFFSET \(offset)
            """,
            logger: logger
        )
        let decoded = try rows.decode((UUID, UUID?, String, String, String, String, Date, Int).self)
        let total = try await total(decoded.first?.7, offset: offset) {
            try await client.query(
                "SELECT count(*)::int FROM messages WHERE conversation_id = \(conversationID) AND tenant_id = \(tenantID)", logger: logger
            )
        }
        let items = try decoded.map { row in
            StoredMessage(
                id: row.0, conversationID: row.1, role: row.2, content: row.3, status: row.4,
                sources: try JSONCoding.decoder.decode([MessageSource].self, from: Data(row.5.utf8)), createdAt: row.6
            )
        }
        return (items, total)
    }

    /// The window's count when the page has rows; otherwise (a page past the end) a count of its own.
    private func total(_ fromWindow: Int?, offset: Int, count: () async throws -> QueryRows) async throws -> Int {
        if let fromWindow { return fromWindow }
        if offset == 0 { return 0 }
        return try await count().decode(Int.self).first ?? 0
    }
}
