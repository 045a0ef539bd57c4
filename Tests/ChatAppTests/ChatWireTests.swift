import Foundation
import NIOHTTP1
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

@testable import ChatApp

private typealias H = ConversationHarness

/// What chat puts on the wire, across its routes: ids in lower case like the other services'; and
/// the order of its checks: billing's 402 comes before anything is stored, searched or judged by
/// the guardrails, and no provider hears of a refused message, nor of a widget opening.
@Suite("chat wire format and check order")
struct ChatWireTests {
    /// Every UUID-shaped string in `text`.
    static func ids(in text: String) -> [String] {
        let pattern = try! NSRegularExpression(pattern: "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
        return pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)).compactMap { Range($0.range, in: text).map { String(text[$0]) } }
    }

    @Test func everyIdChatAnswersIsLowerCase() async throws {
        try await TestStack.with(.auth, .billing, .tenancy, .chat, overrides: H.overrides) { stack in
            let chat = stack.url(.chat)
            let database = stack.databases[.chat]!
            let a = try await Fixtures.register(at: stack.url(.tenancy))
            try await H.insertDocument(database, tenant: a.tenantId, filename: "hours.md", chunks: ["Our opening hours are 7am to 7pm."])
            let session = try await H.session(chat, slug: a.tenantSlug)
            var bodies: [(String, String)] = []

            let (status, _, raw) = try await H.stream(chat, session: session, message: "What are your opening hours?")
            #expect(status == 200)
            bodies.append(("chatkit", raw.map(\.data).joined(separator: "\n")))
            let answer = try await H.ask(chat, session: session, message: "Opening hours again?")
            #expect(answer.status == 200)
            bodies.append(("api/chat", answer.text))
            let widget = try await TestHTTP.send(
                .POST, chat + "/api/public/widgets/\(a.tenantId)/chat", headers: ["X-Session-ID": session], json: ["message": "And the hours?"]
            )
            #expect(widget.status == 200)
            bodies.append(("public widget chat", widget.text))
            let conversation = try #require(try answer.json(H.Answer.self).conversationId)
            let owner = Fixtures.bearer(a.accessToken)
            for (name, path) in [
                ("conversations", "/api/conversations"), ("messages", "/api/conversations/\(conversation.uuidString.lowercased())/messages"),
                ("traces", "/api/admin/tenants/\(a.tenantId)/traces"), ("knowledge stats", "/api/admin/knowledge/stats"),
            ] {
                let response = try await TestHTTP.send(.GET, chat + path, headers: owner)
                #expect(response.status == 200, "\(name): \(response.text)")
                bodies.append((name, response.text))
            }
            for (name, body) in bodies {
                let ids = Self.ids(in: body)
                #expect(!ids.isEmpty, "\(name) carries no id: \(body)")
                #expect(ids.allSatisfy { $0 == $0.lowercased() }, "\(name): \(body)")
            }
        }
    }

    /// Sources and traces stored before ids were written in lower case still read.
    @Test func storedUpperCaseIdsStillRead() throws {
        let id = UUID()
        let stored = #"{"document_id":"\#(id.uuidString)","chunk_id":"\#(id.uuidString)","filename":"a.md","score":0.5}"#
        let source = try JSONCoding.decoder.decode(MessageSource.self, from: Data(stored.utf8))
        #expect(source.documentId == id && source.chunkId == id)
        let written = String(decoding: try JSONCoding.encoder.encode(source), as: UTF8.self)
        #expect(written.contains(id.uuidString.lowercased()) && !written.contains(id.uuidString))
        struct Event: Codable { @LowercaseOptionalUUID var messageId: UUID? }
        #expect(String(decoding: try JSONCoding.encoder.encode(Event(messageId: nil)), as: UTF8.self) == "{}")
        #expect(try JSONCoding.decoder.decode(Event.self, from: Data("{}".utf8)).messageId == nil)
        #expect(try JSONCoding.decoder.decode(Event.self, from: Data(#"{"message_id":"\#(id.uuidString)"}"#.utf8)).messageId == id)
    }

    @Test func overQuotaIs402BeforeGuardrailsAndNoProviderHearsOfIt() async throws {
        let server = try await OpenAITestServer.start(.stream(["From ", "the ", "model."], gap: .zero))
        defer { Task { await server.stop() } }
        var overrides = H.overrides
        overrides.merge([
            "CHAT_RESPONDER": "openai", "OPENAI_BASE_URL": server.baseURL, "OPENAI_API_KEY": "sk-test", "OPENAI_TIMEOUT_SECONDS": "3",
            "ENTITLEMENT_CACHE_SECONDS": "0", "AGENT_CONFIG_CACHE_SECONDS": "0",
        ]) { _, new in new }
        try await TestStack.with(.auth, .billing, .tenancy, .chat, overrides: overrides) { stack in
            let chat = stack.url(.chat)
            let database = stack.databases[.chat]!
            let a = try await Fixtures.register(at: stack.url(.tenancy))
            let tenant = try #require(UUID(uuidString: a.tenantId))
            let put = try await TestHTTP.send(
                .PUT, stack.url(.tenancy) + "/api/admin/tenants/\(a.tenantId)/agent-config", headers: Fixtures.bearer(a.accessToken),
                body: #"{"guardrail_config": {"pii_redaction": false, "blocked_terms": ["casino"]}}"#
            )
            #expect(put.status == 200, "\(put.text)")
            try await H.insertDocument(database, tenant: a.tenantId, filename: "casino.txt", chunks: ["The casino is next door."])
            let session = try await H.session(chat, slug: a.tenantSlug)
            func setTrial(ended: Bool) async throws {
                _ = try await TestPostgres.withClient(stack.databases[.billing]!) { client in
                    try await client.query(
                        "UPDATE subscriptions SET trial_ends_at = now() + \(ended ? -1 : 1) * interval '1 day' WHERE tenant_id = \(tenant)"
                    )
                }
            }
            func nothingStored() async throws -> Bool {
                let messages = try await H.count(database, "SELECT count(*)::int FROM messages")
                let traces = try await H.count(database, "SELECT count(*)::int FROM chat_traces")
                let events = try await H.count(database, "SELECT count(*)::int FROM outbox_events")
                return messages + traces + events == 0
            }

            try await setTrial(ended: true)
            for message in ["Where is the casino?", "What do you sell?"] {
                let json = try await H.ask(chat, session: session, message: message)
                #expect(json.status == 402, "\(message): \(json.text)")
                #expect(try json.error().code == "QUOTA_EXCEEDED")
                let widget = try await TestHTTP.send(
                    .POST, chat + "/api/public/widgets/\(a.tenantId)/chat", headers: ["X-Session-ID": session], json: ["message": message]
                )
                #expect(widget.status == 402, "\(message): \(widget.text)")
                let (streamStatus, _, _) = try await H.stream(chat, session: session, message: message)
                #expect(streamStatus == 402, "\(message)")
            }
            #expect(try await nothingStored())
            // The widget opening greets from the agent's configuration: no provider, no billing.
            let (openStatus, _, openRaw) = try await TestHTTP.events(chat + "/chatkit", headers: ["X-Session-ID": session], body: "{}")
            #expect(openStatus == 200 && openRaw.last?.data == "[DONE]")
            #expect(openRaw.count > 2)
            #expect(try await nothingStored())
            #expect(server.received.isEmpty)

            // Within the quota again: a blocked term is refused without the provider; a plain question reaches it.
            try await setTrial(ended: false)
            let refused = try await H.ask(chat, session: session, message: "Where is the casino?")
            #expect(refused.status == 200)
            #expect(try refused.json(H.Answer.self).status == "refused")
            #expect(server.received.isEmpty)
            let answered = try await H.ask(chat, session: session, message: "What do you sell?")
            #expect(answered.status == 200)
            #expect(try answered.json(H.Answer.self).content == "From the model.")
            #expect(server.received.count == 1)
        }
    }
}
