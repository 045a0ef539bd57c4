import Foundation
import InternalAPI
import NIOHTTP1
import Logging
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

@testable import ChatApp

/// Conversations over real HTTP against real PostgreSQL, with real tenancy (and the auth and
/// billing it registers through): answers from the tenant's own knowledge, history, bad input.
@Suite("chat conversations")
struct ConversationTests {
    typealias H = ConversationHarness

    @Test func answersComeFromTheTenantsOwnKnowledgeAndCiteIt() async throws {
        try await TestStack.with(.auth, .billing, .tenancy, .chat, overrides: H.overrides) { stack in
            let chat = stack.url(.chat)
            let database = stack.databases[.chat]!
            let a = try await Fixtures.register(at: stack.url(.tenancy), accountName: "Bakery Blue")
            let b = try await Fixtures.register(at: stack.url(.tenancy), accountName: "Night Owl")
            // Both tenants' files share the words of the question.
            let aDocument = try await H.insertDocument(
                database, tenant: a.tenantId, filename: "hours.md",
                chunks: ["We bake sourdough every morning.", "Our bakery opening hours are 7am to 7pm on weekdays. Parking is behind the shop."]
            )
            let bDocument = try await H.insertDocument(
                database, tenant: b.tenantId, filename: "secret-hours.md", chunks: ["Our bakery opening hours are midnight to dawn, ask for the secret recipe."]
            )
            let session = try await H.session(chat, slug: a.tenantSlug)
            let (status, events, raw) = try await H.stream(chat, session: session, message: "What are your opening hours?")
            #expect(status == 200)
            #expect(raw.last?.data == "[DONE]")
            let deltas = events.filter { $0.type == "text.delta" }.compactMap(\.delta)
            #expect(deltas.count > 10)
            let completed = try #require(events.last { $0.type == "message.completed" })
            // The first event announces the exchange before retrieval: the ids the answer is then stored under.
            #expect(events.first?.type == "message.started")
            #expect(events.first?.messageId == completed.messageId && events.first?.conversationId == completed.conversationId)
            #expect(events.first?.content == nil && events.first?.delta == nil)
            let answer = try #require(completed.content)
            #expect(deltas.joined() == answer)
            #expect(answer.hasPrefix("Hi! I'm the virtual assistant of Bakery Blue."))
            #expect(answer.contains("Our bakery opening hours are 7am to 7pm on weekdays."))
            #expect(answer.hasSuffix("Source: hours.md"))
            #expect(!answer.contains("midnight") && !answer.contains("secret"))
            #expect(completed.status == "complete")
            #expect(completed.sources?.map(\.filename) == ["hours.md"])
            #expect(completed.sources?.map(\.documentId) == [aDocument])
            let messageID = try #require(completed.messageId)
            let conversationID = try #require(completed.conversationId)

            // What chat then holds: the conversation, both messages, the usage event for billing, the trace.
            #expect(try await H.count(database, "SELECT count(*)::int FROM conversations WHERE id = \(conversationID) AND session_id = \(session) AND tenant_id = \(UUID(uuidString: a.tenantId)!) AND message_count = 2") == 1)
            #expect(try await H.count(database, "SELECT count(*)::int FROM messages WHERE conversation_id = \(conversationID) AND role = 'user' AND content = 'What are your opening hours?'") == 1)
            #expect(try await H.count(database, "SELECT count(*)::int FROM messages WHERE id = \(messageID) AND content = \(answer) AND status = 'complete' AND responder = 'builtin' AND sources @> '[{\"filename\": \"hours.md\"}]'") == 1)
            #expect(try await H.count(database, "SELECT count(*)::int FROM outbox_events e JOIN outbox_deliveries d ON d.event_id = e.id WHERE e.type = 'chat.message_answered' AND (e.payload->>'message_id')::uuid = \(messageID) AND (e.payload->>'tenant_id')::uuid = \(UUID(uuidString: a.tenantId)!) AND (e.payload->>'conversation_id')::uuid = \(conversationID) AND d.subscriber = 'billing'") == 1)
            #expect(try await H.count(database, "SELECT count(*)::int FROM chat_traces WHERE message_id = \(messageID) AND responder = 'builtin' AND status = 'complete' AND first_token_ms IS NOT NULL AND jsonb_array_length(chunks) >= 1 AND words > 10") == 1)

            // The second message of the conversation is not greeted again; a question the files do not answer is admitted.
            let second = try await H.ask(chat, session: session, message: "Do you sell bicycles?")
            #expect(second.status == 200)
            let unknown = try second.json(H.Answer.self)
            #expect(unknown.content == BuiltinResponder.unknown(.friendly))
            #expect(unknown.sources.isEmpty)
            #expect(unknown.conversationId == conversationID)

            // The other tenant's session gets the other tenant's file.
            let other = try await H.ask(chat, session: try await H.session(chat, slug: b.tenantSlug), message: "What are your opening hours?")
            let otherAnswer = try other.json(H.Answer.self)
            #expect(otherAnswer.sources.map(\.documentId) == [bDocument])
            #expect(otherAnswer.content.contains("midnight") && !otherAnswer.content.contains("7am"))

            // Retrieval itself never leaves the tenant, even for words only the other tenant has.
            try await TestPostgres.withDatabase(database) { db in
                let retriever = PostgresKnowledgeRetriever(client: db)
                let logger = Logger(label: "test")
                #expect(try await retriever.search(tenantID: UUID(uuidString: a.tenantId)!, query: "secret recipe midnight dawn", limit: 5, logger: logger).isEmpty)
                let shared = try await retriever.search(tenantID: UUID(uuidString: a.tenantId)!, query: "bakery opening hours", limit: 5, logger: logger)
                #expect(shared.map(\.documentID) == [aDocument])
                #expect(shared.first?.score ?? 0 > 0)
            }
        }
    }

    @Test func historyIsTheSessionsOwnOrTheTenantAdminsWhole() async throws {
        try await TestStack.with(.auth, .billing, .tenancy, .chat, overrides: H.overrides) { stack in
            let chat = stack.url(.chat)
            let a = try await Fixtures.register(at: stack.url(.tenancy))
            let b = try await Fixtures.register(at: stack.url(.tenancy))
            let first = try await H.session(chat, slug: a.tenantSlug)
            let second = try await H.session(chat, slug: a.tenantSlug)
            let stranger = try await H.session(chat, slug: b.tenantSlug)
            let conversation = try #require(try await H.ask(chat, session: first, message: "Hello?").json(H.Answer.self).conversationId)
            #expect(try await H.ask(chat, session: second, message: "Anyone there?").status == 200)

            struct ConversationList: Decodable {
                struct Item: Decodable { var id: UUID; var messageCount: Int }
                var conversations: [Item]
                var total: Int
            }
            struct MessageList: Decodable {
                struct Item: Decodable { var role: String; var content: String; var status: String }
                var messages: [Item]
                var total: Int
            }
            let list = chat + "/api/conversations"
            let messages = chat + "/api/conversations/\(conversation)/messages"
            let own = try await TestHTTP.send(.GET, list, headers: ["X-Session-ID": first]).json(ConversationList.self)
            #expect(own.total == 1)
            #expect(own.conversations.map(\.id) == [conversation])
            #expect(own.conversations.first?.messageCount == 2)
            let ownMessages = try await TestHTTP.send(.GET, messages, headers: ["X-Session-ID": first]).json(MessageList.self)
            #expect(ownMessages.messages.map(\.role) == ["user", "assistant"])
            #expect(ownMessages.messages.first?.content == "Hello?")
            #expect(try await TestHTTP.send(.GET, messages, headers: ["X-Session-ID": second]).status == 404)
            #expect(try await TestHTTP.send(.GET, messages, headers: ["X-Session-ID": stranger]).status == 404)
            #expect(try await TestHTTP.send(.GET, list, headers: ["X-Session-ID": stranger]).json(ConversationList.self).total == 0)

            // The tenant's owner sees every conversation of the tenant, a page at a time.
            let owner = Fixtures.bearer(a.accessToken)
            let all = try await TestHTTP.send(.GET, list, headers: owner).json(ConversationList.self)
            #expect(all.total == 2)
            let page = try await TestHTTP.send(.GET, list + "?limit=1&offset=1", headers: owner).json(ConversationList.self)
            #expect(page.total == 2 && page.conversations.count == 1)
            #expect(try await TestHTTP.send(.GET, messages + "?limit=1", headers: owner).json(MessageList.self).messages.count == 1)
            // Another tenant's owner: the id does not exist for them.
            let otherOwner = Fixtures.bearer(b.accessToken)
            #expect(try await TestHTTP.send(.GET, messages, headers: otherOwner).status == 404)
            #expect(try await TestHTTP.send(.GET, list, headers: otherOwner).json(ConversationList.self).total == 0)
            // A plain member of the tenant may not read its customers' conversations.
            let forge = try await TokenForge.fromAuthDatabase(stack.databases[.auth]!)
            let member = try await forge.sign(tenantID: UUID(uuidString: a.tenantId)!, role: .user)
            let refused = try await TestHTTP.send(.GET, list, headers: Fixtures.bearer(member))
            #expect(refused.status == 403)
            #expect(try refused.error().code == "ROLE_NOT_ALLOWED")
            #expect(try await TestHTTP.send(.GET, list).status == 401)
            #expect(try await TestHTTP.send(.GET, list, headers: ["X-Session-ID": "sess_unknown"]).status == 401)
            #expect(try await TestHTTP.send(.GET, list + "?limit=0", headers: owner).status == 422)
            #expect(try await TestHTTP.send(.GET, chat + "/api/conversations/not-a-uuid/messages", headers: owner).status == 404)
        }
    }

    @Test func badInputIsRefusedAndNothingIsStored() async throws {
        try await TestStack.with(.auth, .billing, .tenancy, .chat, overrides: H.overrides) { stack in
            let chat = stack.url(.chat)
            let database = stack.databases[.chat]!
            let a = try await Fixtures.register(at: stack.url(.tenancy))
            let b = try await Fixtures.register(at: stack.url(.tenancy))
            let session = try await H.session(chat, slug: a.tenantSlug)
            let headers = ["X-Session-ID": session]
            for url in [chat + "/api/chat", chat + "/chatkit", chat + "/api/public/widgets/\(a.tenantId)/chat"] {
                for body in [#"{"message": ""}"#, #"{"message": "   \n "}"#, #"{"messages": [{"role": "user", "content": ""}]}"#,
                    #"{"messages": [{"role": "assistant", "content": "\u3000"}, {"role": "user", "content": "hi"}]}"#] {
                    let response = try await TestHTTP.send(.POST, url, headers: headers, body: body)
                    #expect(response.status == 422, "\(url) \(body)")
                    #expect(try response.error().code == "VALIDATION_ERROR")
                }
                let long = try await TestHTTP.send(.POST, url, headers: headers, json: ["message": String(repeating: "a", count: 8_001)])
                #expect(long.status == 422)
                let huge = try await TestHTTP.send(.POST, url, headers: headers, json: ["message": String(repeating: "word ", count: 20_480)])
                #expect(huge.status == 422)
                var invalidUTF8 = Array(#"{"message": "caf"#.utf8)
                invalidUTF8 += [0xC3, 0x28, 0xFF]
                invalidUTF8 += Array(#""}"#.utf8)
                let invalid = try await TestHTTP.send(.POST, url, headers: headers, bytes: invalidUTF8)
                #expect(invalid.status == 400, "\(url) \(invalid.text)")
                #expect(try await TestHTTP.send(.POST, url, headers: ["X-Session-ID": "sess_unknown"], json: ["message": "hi"]).status == 401)
                #expect(try await TestHTTP.send(.POST, url, json: ["message": "hi"]).status == 401)
            }
            // A session of tenant A used with tenant B: 404, as for a tenant that does not exist.
            let crossed = try await TestHTTP.send(.POST, chat + "/api/public/widgets/\(b.tenantId)/chat", headers: headers, json: ["message": "hi"])
            #expect(crossed.status == 404)
            #expect(try crossed.error().code == "TENANT_NOT_FOUND")
            let crossedSlug = try await TestHTTP.send(.POST, chat + "/chatkit", headers: ["X-Session-ID": session, "X-Tenant-Slug": b.tenantSlug], json: ["message": "hi"])
            #expect(crossedSlug.status == 404)
            #expect(try await TestHTTP.send(.POST, chat + "/api/public/widgets/nope/chat", headers: headers, json: ["message": "hi"]).status == 404)
            // An expired session.
            let expired = try await H.session(chat, slug: a.tenantSlug)
            _ = try await TestPostgres.withClient(database) { client in
                try await client.query("UPDATE widget_sessions SET expires_at = now() - interval '1 minute' WHERE id = \(expired)")
            }
            #expect(try await TestHTTP.send(.POST, chat + "/api/chat", headers: ["X-Session-ID": expired], json: ["message": "hi"]).status == 401)
            #expect(try await H.count(database, "SELECT count(*)::int FROM messages") == 0)
            #expect(try await H.count(database, "SELECT count(*)::int FROM conversations") == 0)
            #expect(try await H.count(database, "SELECT count(*)::int FROM outbox_events") == 0)

            // The same routes answer a good message: the public widget chat with the session's own tenant.
            let good = try await TestHTTP.send(.POST, chat + "/api/public/widgets/\(a.tenantId)/chat", headers: headers, json: ["message": "hi there"])
            #expect(good.status == 200, "\(good.text)")
            #expect(try good.json(H.Answer.self).status == "complete")
            #expect(try await H.count(database, "SELECT count(*)::int FROM messages") == 2)
        }
    }

    @Test func guardrailsRefuseBlockedTermsAndRedactPersonalData() async throws {
        var overrides = H.overrides
        overrides["AGENT_CONFIG_CACHE_SECONDS"] = "0"
        try await TestStack.with(.auth, .billing, .tenancy, .chat, overrides: overrides) { stack in
            let chat = stack.url(.chat)
            let database = stack.databases[.chat]!
            let a = try await Fixtures.register(at: stack.url(.tenancy))
            let put = try await TestHTTP.send(
                .PUT, stack.url(.tenancy) + "/api/admin/tenants/\(a.tenantId)/agent-config", headers: Fixtures.bearer(a.accessToken),
                body: #"{"guardrail_config": {"pii_redaction": true, "blocked_terms": ["casino"]}}"#
            )
            #expect(put.status == 200, "\(put.text)")
            try await H.insertDocument(database, tenant: a.tenantId, filename: "casino.txt", chunks: ["The casino is next door."])
            let session = try await H.session(chat, slug: a.tenantSlug)
            let refused = try await H.ask(chat, session: session, message: "Where is the Casino?")
            #expect(refused.status == 200)
            let refusal = try refused.json(H.Answer.self)
            #expect(refusal.content == Guardrails.refusal)
            #expect(refusal.status == "refused")
            #expect(refusal.sources.isEmpty)
            #expect(try await H.count(database, "SELECT count(*)::int FROM messages WHERE role = 'assistant' AND status = 'refused' AND responder = 'guardrails'") == 1)
            // A refusal is not an answer billing counts.
            #expect(try await H.count(database, "SELECT count(*)::int FROM outbox_events") == 0)

            let personal = try await H.ask(chat, session: session, message: "Mail me at ana@example.com, my card is 4111 1111 1111 1111")
            #expect(personal.status == 200)
            #expect(try await H.count(database, "SELECT count(*)::int FROM messages WHERE role = 'user' AND content = 'Mail me at [email], my card is [card]'") == 1)
            #expect(try await H.count(database, "SELECT count(*)::int FROM messages WHERE content LIKE '%ana@example.com%' OR content LIKE '%4111%'") == 0)
        }
    }

    @Test func billingSilentPastTheGraceMeans503AndNothingStored() async throws {
        var overrides = H.overrides
        overrides["QUOTA_GRACE_SECONDS"] = "0"
        try await TestStack.with(.auth, .billing, .tenancy, .chat, overrides: overrides) { stack in
            let chat = stack.url(.chat)
            let a = try await Fixtures.register(at: stack.url(.tenancy))
            let session = try await H.session(chat, slug: a.tenantSlug)
            await stack.stop(.billing)
            let response = try await H.ask(chat, session: session, message: "hello")
            #expect(response.status == 503)
            #expect(try response.error().code == "UPSTREAM_UNAVAILABLE")
            #expect(try await H.count(stack.databases[.chat]!, "SELECT count(*)::int FROM messages") == 0)
            // Opening the widget (no message) asks nothing of billing.
            let (status, _, events) = try await TestHTTP.events(chat + "/chatkit", headers: ["X-Session-ID": session], body: "{}")
            #expect(status == 200 && events.last?.data == "[DONE]")
        }
    }

    @Test func aClientThatLeavesStopsTheAnswerWhichIsKeptAsPartial() async throws {
        var overrides = H.overrides
        overrides["CHAT_STREAM_TOKEN_DELAY_MS"] = "100"
        try await TestStack.with(.auth, .billing, .tenancy, .chat, overrides: overrides) { stack in
            let chat = stack.url(.chat)
            let database = stack.databases[.chat]!
            let a = try await Fixtures.register(at: stack.url(.tenancy))
            let long = "The delivery area covers " + (1...80).map { "street\($0)" }.joined(separator: " ") + "."
            try await H.insertDocument(database, tenant: a.tenantId, filename: "delivery.txt", chunks: [long])
            let session = try await H.session(chat, slug: a.tenantSlug)
            let reader = Task { try await H.stream(chat, session: session, message: "Which delivery area do you cover?") }
            try await Task.sleep(for: .milliseconds(800))
            reader.cancel()
            _ = try? await reader.value
            let stored = try await Polling.within(10) {
                try await H.count(database, "SELECT count(*)::int FROM messages WHERE role = 'assistant' AND status = 'partial'") == 1
            }
            #expect(stored != nil)
            // Stopped well before the ~100 words of the whole answer.
            let words = try await TestPostgres.withClient(database) { client in
                var result = 0
                for try await (count) in try await client.query("SELECT words FROM chat_traces WHERE status = 'partial' AND error = 'client disconnected'").decode(Int.self) {
                    result = count
                }
                return result
            }
            #expect(words > 0 && words < 40, "\(words) words")
        }
    }

    @Test func tracesAreForTheTenantsAdminsAndSuperAdmins() async throws {
        try await TestStack.with(.auth, .billing, .tenancy, .chat, overrides: H.overrides) { stack in
            let chat = stack.url(.chat)
            let a = try await Fixtures.register(at: stack.url(.tenancy))
            let b = try await Fixtures.register(at: stack.url(.tenancy))
            try await H.insertDocument(stack.databases[.chat]!, tenant: a.tenantId, filename: "faq.md", chunks: ["Returns are accepted within 30 days."])
            let answer = try await H.ask(chat, session: try await H.session(chat, slug: a.tenantSlug), message: "Are returns accepted?").json(H.Answer.self)
            struct TraceList: Decodable {
                struct Trace: Decodable {
                    struct Chunk: Decodable { var chunkId: UUID; var score: Double }
                    var messageId: UUID?
                    var responder: String
                    var status: String
                    var firstTokenMs: Int?
                    var totalMs: Int
                    var chunks: [Chunk]
                    var words: Int
                    var error: String?
                }
                var traces: [Trace]
                var total: Int
            }
            let url = chat + "/api/admin/tenants/\(a.tenantId)/traces"
            let traces = try await TestHTTP.send(.GET, url, headers: Fixtures.bearer(a.accessToken)).json(TraceList.self)
            #expect(traces.total == 1)
            let trace = try #require(traces.traces.first)
            #expect(trace.messageId == answer.messageId)
            #expect(trace.responder == "builtin" && trace.status == "complete" && trace.error == nil)
            #expect(trace.chunks.count == 1 && trace.chunks[0].chunkId == answer.sources.first?.chunkId)
            #expect(trace.firstTokenMs != nil && trace.totalMs >= (trace.firstTokenMs ?? 0) && trace.words > 3)
            #expect(try await TestHTTP.send(.GET, url, headers: Fixtures.bearer(b.accessToken)).status == 404)
            #expect(try await TestHTTP.send(.GET, url).status == 401)
            let forge = try await TokenForge.fromAuthDatabase(stack.databases[.auth]!)
            let member = try await forge.sign(tenantID: UUID(uuidString: a.tenantId)!, role: .user)
            #expect(try await TestHTTP.send(.GET, url, headers: Fixtures.bearer(member)).status == 403)
            let superAdmin = try await forge.sign(tenantID: UUID(), role: .superAdmin)
            #expect(try await TestHTTP.send(.GET, url, headers: Fixtures.bearer(superAdmin)).json(TraceList.self).total == 1)
        }
    }
}
