import AsyncHTTPClient
import Foundation
import NIOHTTP1
import InternalAPI
import Logging
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

@testable import ChatApp

/// The OpenAI responder against a local server speaking OpenAI's streaming wire format: a normal
/// stream, a stall, 429 and 500 with OpenAI's error body, a consumer that leaves; then through chat.
@Suite("chat OpenAI responder")
struct OpenAIResponderTests {
    typealias H = ConversationHarness

    static let chunk = RetrievedChunk(id: UUID(), documentID: UUID(), filename: "menu.md", content: "Croissants cost 2 euros.", score: 0.4)

    static func context() -> ReplyContext {
        ReplyContext(
            userMessage: "How much is a croissant?", history: [ChatTurn(role: "user", content: "Hi"), ChatTurn(role: "assistant", content: "Hello!")],
            chunks: [chunk], agent: GuardrailsTests.agent(tone: .professional), isFirstContact: false
        )
    }

    /// A generous timeout where the test is not about it: the whole suite shares two cores.
    static func responder(_ server: OpenAITestServer, timeout: Duration = .seconds(15)) -> OpenAIResponder {
        OpenAIResponder(
            settings: OpenAISettings(baseURL: server.baseURL, apiKey: "sk-test", model: "test-model", timeout: timeout), http: HTTPClient.shared,
            logger: Logger(label: "test")
        )
    }

    /// Every piece until the stream ends, and how it ended.
    static func collect(_ stream: AsyncThrowingStream<String, any Error>) async -> (pieces: [String], error: (any Error)?) {
        var pieces: [String] = []
        do {
            for try await piece in stream { pieces.append(piece) }
            return (pieces, nil)
        } catch {
            return (pieces, error)
        }
    }

    @Test func aStreamArrivesPieceByPieceWithTheTenantsSettings() async throws {
        let server = try await OpenAITestServer.start(.stream(["Croissants ", "cost ", "2 euros ", "(menu.md)."], gap: .milliseconds(20)))
        defer { Task { await server.stop() } }
        let (pieces, error) = await Self.collect(Self.responder(server).reply(Self.context()))
        #expect(error == nil)
        #expect(pieces == ["Croissants ", "cost ", "2 euros ", "(menu.md)."])
        let request = try #require(server.received.first)
        #expect(request.path == "/v1/chat/completions")
        #expect(request.authorization == "Bearer sk-test")
        struct Sent: Decodable {
            struct Message: Decodable { var role: String; var content: String }
            var model: String
            var messages: [Message]
            var temperature: Double
            var maxTokens: Int
            var stream: Bool
        }
        let sent = try JSONCoding.decoder.decode(Sent.self, from: request.body)
        #expect(sent.model == "test-model" && sent.stream && sent.temperature == 0.7 && sent.maxTokens == 500)
        #expect(sent.messages.map(\.role) == ["system", "user", "assistant", "user"])
        #expect(sent.messages[0].content.contains("[menu.md]\nCroissants cost 2 euros."))
        #expect(sent.messages[0].content.contains("professional"))
        #expect(sent.messages.last?.content == "How much is a croissant?")
    }

    @Test func aProviderThatStallsEndsWithATimeout() async throws {
        for pieces in [[String](), ["Croissants "]] {
            let server = try await OpenAITestServer.start(.stallAfter(pieces))
            let started = ContinuousClock.now
            let (received, error) = await Self.collect(Self.responder(server, timeout: .seconds(2)).reply(Self.context()))
            let elapsed = ContinuousClock.now - started
            #expect(received == pieces)
            #expect(error as? ResponderError == .timedOut(seconds: 2))
            #expect(elapsed >= .milliseconds(1_900) && elapsed < .seconds(10), "\(elapsed)")
            await server.stop()
        }
    }

    @Test func rateLimitsAndServerErrorsBecomeResponderErrors() async throws {
        let server = try await OpenAITestServer.start(.fail(status: 429, message: "Rate limit reached for requests", type: "requests"))
        defer { Task { await server.stop() } }
        let (pieces, limited) = await Self.collect(Self.responder(server).reply(Self.context()))
        #expect(pieces.isEmpty)
        #expect(limited as? ResponderError == .provider(status: 429, message: "Rate limit reached for requests"))
        #expect((limited as? ResponderError)?.code == "RESPONDER_RATE_LIMITED")
        server.behave(.fail(status: 500, message: "The server had an error while processing your request.", type: "server_error"))
        let (_, failed) = await Self.collect(Self.responder(server).reply(Self.context()))
        #expect(failed as? ResponderError == .provider(status: 500, message: "The server had an error while processing your request."))
        #expect((failed as? ResponderError)?.code == "RESPONDER_ERROR")
    }

    @Test func aConsumerThatLeavesCancelsTheRequest() async throws {
        let server = try await OpenAITestServer.start(.stream((1...100).map { "w\($0) " }, gap: .milliseconds(50)))
        defer { Task { await server.stop() } }
        var taken = 0
        for try await _ in Self.responder(server, timeout: .seconds(5)).reply(Self.context()) {
            taken += 1
            if taken == 3 { break }
        }
        let gone = try await Polling.within(5) { server.clientLeft == 1 }
        #expect(gone != nil)
        #expect(server.piecesWritten < 20)
    }

    @Test func aTenantsAgentConfigurationPicksTheResponder() async throws {
        let server = try await OpenAITestServer.start(.stream(["From ", "the ", "model."], gap: .zero))
        defer { Task { await server.stop() } }
        var overrides = H.overrides
        overrides.merge(["OPENAI_BASE_URL": server.baseURL, "AGENT_CONFIG_CACHE_SECONDS": "0"]) { _, new in new }
        try await TestStack.with(.auth, .billing, .tenancy, .chat, overrides: overrides) { stack in
            let chat = stack.url(.chat)
            let a = try await Fixtures.register(at: stack.url(.tenancy))
            let session = try await H.session(chat, slug: a.tenantSlug)
            let put = { (body: String) in
                try await TestHTTP.send(
                    .PUT, stack.url(.tenancy) + "/api/admin/tenants/\(a.tenantId)/agent-config", headers: Fixtures.bearer(a.accessToken), body: body
                )
            }
            #expect(try await put(#"{"responder": "gpt"}"#).status == 422)
            #expect(try await H.ask(chat, session: session, message: "hello").json(H.Answer.self).content.contains("don't know"))
            #expect(try await put(#"{"responder": "openai"}"#).status == 200)
            #expect(try await H.ask(chat, session: session, message: "hello").json(H.Answer.self).content == "From the model.")
            #expect(try await put(#"{"responder": "default"}"#).status == 200)
            #expect(try await H.ask(chat, session: session, message: "hello").json(H.Answer.self).content.contains("don't know"))
            #expect(server.received.count == 1)
        }
    }

    @Test func chatStreamsTheProvidersAnswerAndTurnsItsFailuresIntoErrorEvents() async throws {
        let server = try await OpenAITestServer.start(.stream(["Croissants ", "cost ", "2 euros."], gap: .milliseconds(20)))
        defer { Task { await server.stop() } }
        var overrides = H.overrides
        overrides.merge(["CHAT_RESPONDER": "openai", "OPENAI_BASE_URL": server.baseURL, "OPENAI_API_KEY": "sk-test", "OPENAI_MODEL": "test-model", "OPENAI_TIMEOUT_SECONDS": "3"]) { _, new in new }
        try await TestStack.with(.auth, .billing, .tenancy, .chat, overrides: overrides) { stack in
            let chat = stack.url(.chat)
            let database = stack.databases[.chat]!
            let a = try await Fixtures.register(at: stack.url(.tenancy))
            try await H.insertDocument(database, tenant: a.tenantId, filename: "menu.md", chunks: ["Croissants cost 2 euros each."])
            let session = try await H.session(chat, slug: a.tenantSlug)
            let (status, events, raw) = try await H.stream(chat, session: session, message: "How much is a croissant?")
            #expect(status == 200)
            #expect(events.filter { $0.type == "text.delta" }.compactMap(\.delta) == ["Croissants ", "cost ", "2 euros."])
            let completed = try #require(events.last)
            #expect(completed.type == "message.completed" && completed.content == "Croissants cost 2 euros." && completed.sources?.map(\.filename) == ["menu.md"])
            #expect(raw.last?.data == "[DONE]")
            #expect(try await H.count(database, "SELECT count(*)::int FROM messages WHERE role = 'assistant' AND responder = 'openai' AND status = 'complete'") == 1)
            #expect(server.received.last.map { String(decoding: $0.body, as: UTF8.self).contains("Croissants cost 2 euros each.") } == true)

            // A stall: an error event within the timeout, then [DONE]; what was said is kept as partial.
            server.behave(.stallAfter(["Croissants "]))
            let started = ContinuousClock.now
            let (_, stalled, stalledRaw) = try await H.stream(chat, session: session, message: "And a baguette?")
            #expect(ContinuousClock.now - started < .seconds(12))
            #expect(stalled.last?.type == "error" && stalled.last?.code == "RESPONDER_TIMEOUT")
            #expect(stalledRaw.last?.data == "[DONE]")
            // The partial answer is stored under the id the stream's first event announced, and the error names it.
            let stalledID = try #require(stalled.first { $0.type == "message.started" }?.messageId)
            #expect(stalled.first?.type == "message.started" && stalled.last?.messageId == stalledID)
            #expect(try await H.count(database, "SELECT count(*)::int FROM messages WHERE id = \(stalledID) AND role = 'assistant' AND status = 'partial' AND content = 'Croissants '") == 1)

            // 429 and 500: an error event, no assistant message, the error in the trace.
            for (code, expected) in [(429, "RESPONDER_RATE_LIMITED"), (500, "RESPONDER_ERROR")] {
                server.behave(.fail(status: code, message: "provider says no", type: "server_error"))
                let (status, failed, failedRaw) = try await H.stream(chat, session: session, message: "Anything else?")
                #expect(status == 200)
                // Nothing was said, so nothing is stored under the announced id and the error names no message.
                #expect(failed.map(\.type) == ["message.started", "error"] && failed.last?.code == expected)
                #expect(failed.first?.messageId != nil && failed.last?.messageId == nil)
                #expect(try await H.count(database, "SELECT count(*)::int FROM messages WHERE id = \(failed.first?.messageId)") == 0)
                #expect(failedRaw.last?.data == "[DONE]")
            }
            #expect(try await H.count(database, "SELECT count(*)::int FROM messages WHERE role = 'assistant'") == 2)
            #expect(try await H.count(database, "SELECT count(*)::int FROM chat_traces WHERE status = 'failed' AND error LIKE 'provider answered %: provider says no'") == 2)
            // The JSON route answers the provider's failure in its body, as the stream does.
            struct Failed: Decodable { struct Failure: Decodable { var code: String }; var status: String; var content: String; var error: Failure? }
            let json = try await H.ask(chat, session: session, message: "Anything else?")
            #expect(json.status == 200)
            let failed = try json.json(Failed.self)
            #expect(failed.status == "failed" && failed.content.isEmpty && failed.error?.code == "RESPONDER_ERROR")
        }
    }
}
