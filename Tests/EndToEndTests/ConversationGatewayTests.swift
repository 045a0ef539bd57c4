import Foundation
import NIOHTTP1
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

/// A widget's question answered from the tenant's knowledge, through the gateway.
@Suite("conversations through the gateway")
struct ConversationGatewayTests {
    struct Session: Decodable { var sessionId: String }
    struct Event: Decodable {
        struct Source: Decodable { var filename: String }
        var type: String
        var delta: String?
        var content: String?
        var messageId: UUID?
        var sources: [Source]?
    }
    struct Messages: Decodable {
        struct Message: Decodable { var role: String; var content: String }
        var messages: [Message]
    }

    @Test func aWidgetQuestionIsAnsweredFromAnInsertedChunkAndCitesIt() async throws {
        let overrides = ["CHAT_STREAM_TOKEN_DELAY_MS": "30", "RATE_LIMIT_SESSION_PER_MINUTE": "1000", "QUOTA_GRACE_SECONDS": "3600"]
        try await TestStack.with(.auth, .billing, .tenancy, .chat, .gateway, overrides: overrides) { stack in
            let gateway = stack.url(.gateway)
            let owner = try await Fixtures.register(at: gateway, accountName: "Harbour Books")
            // The chunk as ingestion leaves it (ingestion is tested on its own).
            let tenantID = UUID(uuidString: owner.tenantId)!
            let documentID = UUID()
            try await TestPostgres.withClient(stack.databases[.chat]!) { client in
                try await client.query(
                    """
                    INSERT INTO knowledge_documents (id, tenant_id, filename, content_type, size_bytes, sha256, storage_key, status, chunk_count)
                    VALUES (\(documentID), \(tenantID), 'shipping-policy.md', 'text/markdown', 80, 'x', 'k', 'completed', 1)
                    """
                )
                try await client.query(
                    """
                    INSERT INTO knowledge_chunks (id, tenant_id, document_id, position, content, search_config)
                    VALUES (\(UUID()), \(tenantID), \(documentID), 0, 'International shipping takes 5 to 8 business days and costs 12 dollars.', 'english')
                    """
                )
            }
            let session = try await TestHTTP.send(.POST, gateway + "/api/sessions/init", headers: ["X-Tenant-Slug": owner.tenantSlug], json: [String: String]())
            #expect(session.status == 201)
            let sessionID = try session.json(Session.self).sessionId

            let (status, contentType, raw) = try await TestHTTP.events(
                gateway + "/chatkit", headers: ["X-Session-ID": sessionID],
                body: #"{"messages":[{"role":"user","content":"How long does international shipping take?"}]}"#
            )
            #expect(status == 200)
            #expect(contentType == "text/event-stream")
            #expect(raw.last?.data == "[DONE]")
            let events = raw.dropLast().compactMap { try? JSONCoding.decoder.decode(Event.self, from: Data($0.data.utf8)) }
            let deltas = events.filter { $0.type == "text.delta" }
            #expect(deltas.count > 20)
            #expect(events.first?.type == "message.started")
            let completed = try #require(events.last)
            #expect(completed.type == "message.completed")
            let answer = try #require(completed.content)
            #expect(answer.contains("International shipping takes 5 to 8 business days"))
            #expect(answer.hasSuffix("Source: shipping-policy.md"))
            #expect(completed.sources?.map(\.filename) == ["shipping-policy.md"])
            // Incrementally: the first words arrive long before the last.
            #expect(raw.first!.at < raw.last!.at - .milliseconds(400))

            // The session reads its history back through the gateway.
            let history = try await TestHTTP.send(.GET, gateway + "/api/conversations", headers: ["X-Session-ID": sessionID])
            #expect(history.status == 200, "\(history.text)")
            struct List: Decodable { struct Item: Decodable { var id: UUID }; var conversations: [Item] }
            let conversation = try #require(try history.json(List.self).conversations.first?.id)
            let messages = try await TestHTTP.send(.GET, gateway + "/api/conversations/\(conversation)/messages", headers: Fixtures.bearer(owner.accessToken))
            #expect(try messages.json(Messages.self).messages.map(\.content) == ["How long does international shipping take?", answer])
        }
    }
}
