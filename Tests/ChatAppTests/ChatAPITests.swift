import Foundation
import InternalAPI
import NIOHTTP1
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

@testable import ChatApp

/// chat over real HTTP, with real tenancy (and the auth and billing it registers through).
@Suite("chat")
struct ChatAPITests {
    struct Session: Decodable {
        var sessionId: String
        var expiresAt: Date
    }

    struct Valid: Decodable { var valid: Bool }

    static func startSession(_ stack: TestStack, slug: String) async throws -> Session {
        let response = try await TestHTTP.send(.POST, stack.url(.chat) + "/api/sessions/init", headers: ["X-Tenant-Slug": slug], json: ["external_user_id": "customer-1"])
        guard response.status == 201 else { throw FixtureError(description: "init answered \(response.status): \(response.text)") }
        return try response.json(Session.self)
    }

    @Test func sessionsAreCreatedAndValidated() async throws {
        try await TestStack.with(.auth, .billing, .tenancy, .chat) { stack in
            let registered = try await Fixtures.register(at: stack.url(.tenancy))
            let session = try await Self.startSession(stack, slug: registered.tenantSlug)
            #expect(session.sessionId.hasPrefix("sess_"))
            let days = session.expiresAt.timeIntervalSinceNow / 86_400
            #expect(days > 29.9 && days <= 30)
            let stored = try await TestPostgres.count(
                stack.databases[.chat]!,
                "SELECT count(*)::int FROM widget_sessions WHERE id = \(session.sessionId) AND tenant_id = \(UUID(uuidString: registered.tenantId)!) AND external_user_id = 'customer-1'"
            )
            #expect(stored == 1)

            let validate = stack.url(.chat) + "/api/sessions/validate"
            #expect(try await TestHTTP.send(.POST, validate, headers: ["X-Session-ID": session.sessionId]).json(Valid.self).valid)
            #expect(try await TestHTTP.send(.POST, validate, headers: ["X-Session-ID": "sess_unknown"]).json(Valid.self).valid == false)
            #expect(try await TestHTTP.send(.POST, validate, headers: ["X-Session-ID": "'; DROP TABLE x; --"]).json(Valid.self).valid == false)
            let noHeader = try await TestHTTP.send(.POST, validate)
            #expect(noHeader.status == 400)

            _ = try await TestPostgres.withClient(stack.databases[.chat]!) { client in
                try await client.query("UPDATE widget_sessions SET expires_at = now() - interval '1 minute' WHERE id = \(session.sessionId)")
            }
            #expect(try await TestHTTP.send(.POST, validate, headers: ["X-Session-ID": session.sessionId]).json(Valid.self).valid == false)
        }
    }

    @Test func initRefusesBadInput() async throws {
        try await TestStack.with(.auth, .billing, .tenancy, .chat) { stack in
            let url = stack.url(.chat) + "/api/sessions/init"
            let noSlug = try await TestHTTP.send(.POST, url, json: [String: String]())
            #expect(noSlug.status == 400)
            #expect(try noSlug.error().code == "TENANT_SLUG_REQUIRED")
            let unknown = try await TestHTTP.send(.POST, url, headers: ["X-Tenant-Slug": "no-such-tenant"], json: [String: String]())
            #expect(unknown.status == 404)
            #expect(try unknown.error().code == "TENANT_NOT_FOUND")
            for odd in ["a b", "../internal", "x?y=1", "%2e%2e"] {
                let response = try await TestHTTP.send(.POST, url, headers: ["X-Tenant-Slug": odd], json: [String: String]())
                #expect(response.status == 404, "\(odd)")
            }
            let registered = try await Fixtures.register(at: stack.url(.tenancy))
            let malformed = try await TestHTTP.send(.POST, url, headers: ["X-Tenant-Slug": registered.tenantSlug], body: "{nope")
            #expect(malformed.status == 400)
            let tooLong = try await TestHTTP.send(
                .POST, url, headers: ["X-Tenant-Slug": registered.tenantSlug], json: ["external_user_id": String(repeating: "x", count: 300)]
            )
            #expect(tooLong.status == 422)
            #expect(try tooLong.error().fields?["external_user_id"] != nil)
            #expect(try await TestPostgres.count(stack.databases[.chat]!, "SELECT count(*)::int FROM widget_sessions") == 0)
        }
    }

    @Test func chatkitStreamsTheGreetingEventByEvent() async throws {
        try await TestStack.with(.auth, .billing, .tenancy, .chat) { stack in
            let registered = try await Fixtures.register(at: stack.url(.tenancy), accountName: "Bakery Blue")
            let session = try await Self.startSession(stack, slug: registered.tenantSlug)
            let (status, contentType, events) = try await TestHTTP.events(
                stack.url(.chat) + "/chatkit", headers: ["X-Session-ID": session.sessionId],
                body: #"{"messages":[{"role":"user","content":"Hello there"}]}"#
            )
            #expect(status == 200)
            #expect(contentType == "text/event-stream")
            #expect(events.last?.data == "[DONE]")
            struct Event: Decodable { var type: String; var delta: String?; var content: String?; var messageId: UUID?; var conversationId: UUID? }
            let decoded = try events.dropLast().map { try JSONCoding.decoder.decode(Event.self, from: Data($0.data.utf8)) }
            // The stream opens with `message.started` (the ids the answer is stored under), then the words, then `message.completed`.
            #expect(decoded.map(\.type) == ["message.started"] + Array(repeating: "text.delta", count: decoded.count - 2) + ["message.completed"])
            let messageID = try #require(decoded.first?.messageId)
            #expect(decoded.last?.messageId == messageID)
            #expect(decoded.first?.conversationId != nil && decoded.last?.conversationId == decoded.first?.conversationId)
            let deltas = decoded.filter { $0.type == "text.delta" }.compactMap(\.delta)
            #expect(deltas.count > 5)
            // First contact: the greeting, then (with nothing in the knowledge base) a plain "I don't know".
            let greeting = "Hi! I'm the virtual assistant of Bakery Blue. How can I help you today?\n\n" + BuiltinResponder.unknown(.friendly)
            #expect(deltas.joined() == greeting)
            #expect(decoded.last?.content == greeting)
            // Produced 100 ms apart and received as produced, not all at the end.
            let spread = events.last!.at - events.first!.at
            #expect(spread > .milliseconds(100 * (deltas.count - 2)))

            let messages = try await TestPostgres.count(
                stack.databases[.chat]!,
                "SELECT count(*)::int FROM messages WHERE session_id = \(session.sessionId) AND ((role = 'user' AND content = 'Hello there') OR (role = 'assistant' AND content = \(greeting)))"
            )
            #expect(messages == 2)
        }
    }

    @Test func chatkitNeedsAValidSession() async throws {
        try await TestStack.with(.auth, .billing, .tenancy, .chat) { stack in
            let url = stack.url(.chat) + "/chatkit"
            let none = try await TestHTTP.send(.POST, url, json: [String: String]())
            #expect(none.status == 401)
            #expect(try none.error().code == "INVALID_SESSION")
            let unknown = try await TestHTTP.send(.POST, url, headers: ["X-Session-ID": "sess_doesnotexist"], json: [String: String]())
            #expect(unknown.status == 401)
            let registered = try await Fixtures.register(at: stack.url(.tenancy))
            let session = try await Self.startSession(stack, slug: registered.tenantSlug)
            let malformed = try await TestHTTP.send(.POST, url, headers: ["X-Session-ID": session.sessionId], body: "{")
            #expect(malformed.status == 400)
            #expect(try await TestPostgres.count(stack.databases[.chat]!, "SELECT count(*)::int FROM messages") == 0)
        }
    }

    @Test func tenancyDownMeans503() async throws {
        try await TestStack.with(.auth, .billing, .tenancy, .chat) { stack in
            let registered = try await Fixtures.register(at: stack.url(.tenancy))
            await stack.stop(.tenancy)
            let response = try await TestHTTP.send(.POST, stack.url(.chat) + "/api/sessions/init", headers: ["X-Tenant-Slug": registered.tenantSlug], json: [String: String]())
            #expect(response.status == 503)
            #expect(try await TestPostgres.count(stack.databases[.chat]!, "SELECT count(*)::int FROM widget_sessions") == 0)
        }
    }

    @Test func greetingIsSplitIntoWords() {
        #expect(WordStream.tokens(of: "Hi there,  friend!") == ["Hi ", "there,  ", "friend!"])
        #expect(WordStream.tokens(of: "").isEmpty)
    }
}
