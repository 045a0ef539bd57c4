import Foundation
import NIOHTTP1
import PostgresNIO
import ServiceCore
import TestSupport

/// What the conversation tests share: a tenant with a widget session, knowledge inserted straight
/// into chat's tables (ingestion is not under test here), and the stream's events decoded.
enum ConversationHarness {
    static let overrides = ["CHAT_STREAM_TOKEN_DELAY_MS": "0", "QUOTA_GRACE_SECONDS": "3600"]

    struct Session: Decodable { var sessionId: String }

    struct Event: Decodable {
        var type: String
        var delta: String?
        var content: String?
        var messageId: UUID?
        var conversationId: UUID?
        var status: String?
        var sources: [Source]?
        var code: String?
        var detail: String?
    }

    struct Source: Decodable, Equatable {
        var documentId: UUID
        var chunkId: UUID
        var filename: String
    }

    struct Answer: Decodable {
        var messageId: UUID?
        var conversationId: UUID?
        var content: String
        var status: String
        var sources: [Source]
    }

    static func session(_ base: String, slug: String) async throws -> String {
        let response = try await TestHTTP.send(.POST, base + "/api/sessions/init", headers: ["X-Tenant-Slug": slug], json: [String: String]())
        guard response.status == 201 else { throw FixtureError(description: "init answered \(response.status): \(response.text)") }
        return try response.json(Session.self).sessionId
    }

    /// A completed document of `tenant` holding `chunks`; returns the document's id.
    @discardableResult
    static func insertDocument(
        _ database: DatabaseConfig, tenant: String, filename: String, chunks: [String], config: String = "english"
    ) async throws -> UUID {
        let tenantID = UUID(uuidString: tenant)!
        let documentID = UUID()
        try await TestPostgres.withClient(database) { client in
            try await client.query(
                """
                INSERT INTO knowledge_documents (id, tenant_id, filename, content_type, size_bytes, sha256, storage_key, status, chunk_count, processed_at)
                VALUES (\(documentID), \(tenantID), \(filename), 'text/plain', 100, 'x', \(documentID.uuidString), 'completed', \(chunks.count), now())
                """
            )
            for (position, content) in chunks.enumerated() {
                try await client.query(
                    """
                    INSERT INTO knowledge_chunks (id, tenant_id, document_id, position, content, search_config)
                    VALUES (\(UUID()), \(tenantID), \(documentID), \(position), \(content), \(config)::regconfig)
                    """
                )
            }
        }
        return documentID
    }

    static func stream(_ base: String, session: String, message: String, headers: [String: String] = [:]) async throws -> (status: Int, events: [Event], raw: [ReceivedEvent]) {
        let body = String(decoding: try JSONCoding.encoder.encode(["messages": [["role": "user", "content": message]]]), as: UTF8.self)
        let (status, _, raw) = try await TestHTTP.events(base + "/chatkit", headers: headers.merging(["X-Session-ID": session]) { a, _ in a }, body: body)
        let events = raw.filter { $0.data != "[DONE]" }.compactMap { try? JSONCoding.decoder.decode(Event.self, from: Data($0.data.utf8)) }
        return (status, events, raw)
    }

    static func ask(_ base: String, session: String, message: String) async throws -> TestResponse {
        try await TestHTTP.send(.POST, base + "/api/chat", headers: ["X-Session-ID": session], json: ["message": message])
    }

    static func count(_ database: DatabaseConfig, _ query: PostgresQuery) async throws -> Int {
        try await TestPostgres.count(database, query)
    }
}
