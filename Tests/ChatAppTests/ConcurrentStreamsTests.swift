#if canImport(Glibc)
import Glibc
#endif
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

@testable import ChatApp

/// Issue 10's "1,000 concurrent streams": a live chat (real HTTP, real PostgreSQL, real tenancy
/// and billing) with 1,000 `/chatkit` streams open at once, each from its own widget session.
@Suite("chat: 1,000 concurrent streams")
struct ConcurrentStreamsTests {
    typealias H = ConversationHarness
    static let streams = 1_000

    /// What one stream delivered.
    struct Received: Sendable {
        var status = 0
        var events: [String] = []
        /// The stream's final `[DONE]` had arrived by the time every stream had its first event.
        var doneBeforeAllStarted = false
        var failure: String?
    }

    /// Opens every stream, reads each one's head and first event, waits until all 1,000 have theirs
    /// (so all are open at once), then reads them to the end. Every stream must open with
    /// `message.started` and end with `message.completed` (the content its deltas spelled, status
    /// complete, the message id the start announced) and `[DONE]`, and chat must hold both messages
    /// of each conversation, its trace and its usage event.
    @Test(.timeLimit(.minutes(2)))
    func aThousandStreamsAtOnceAllCompleteAndAreStored() async throws {
        Self.raiseOpenFileLimit(to: 4 * Self.streams + 1_024)
        // 30 ms between words: each answer takes about a second, so the streams overlap in chat too.
        let overrides = H.overrides.merging(["CHAT_STREAM_TOKEN_DELAY_MS": "30"]) { _, new in new }
        try await TestStack.with(.auth, .billing, .tenancy, .chat, overrides: overrides) { stack in
            let chat = stack.url(.chat)
            let database = stack.databases[.chat]!
            let tenant = try await Fixtures.register(at: stack.url(.tenancy), accountName: "Crowded Cafe")
            let tenantID = UUID(uuidString: tenant.tenantId)!
            // The trial's 1,000 messages a month would be used up by this very test.
            _ = try await TestPostgres.withClient(stack.databases[.billing]!) { client in
                try await client.query("UPDATE plans SET monthly_message_quota = 1000000 WHERE id = 'trial'")
            }
            let document = try await H.insertDocument(
                database, tenant: tenant.tenantId, filename: "menu.md",
                chunks: ["Our espresso costs two dollars and the cappuccino three.", "We open at seven and close at nine every day."]
            )

            var configuration = HTTPClient.Configuration()
            configuration.timeout = .init(connect: .seconds(30), read: .seconds(60))
            configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = Self.streams + 100
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            do {
                let clock = ContinuousClock()
                let started = clock.now
                let sessions = try await Self.insertSessions(Self.streams, tenantID: tenantID, database: database)
                let opened = clock.now
                let barrier = Barrier(parties: Self.streams)
                let received = await withTaskGroup(of: Received.self) { group in
                    for (index, session) in sessions.enumerated() {
                        let message = index.isMultiple(of: 2) ? "How much is an espresso?" : "When do you open?"
                        group.addTask { await Self.stream(client: client, url: chat + "/chatkit", session: session, message: message, barrier: barrier) }
                    }
                    var all: [Received] = []
                    for await one in group { all.append(one) }
                    return all
                }

                print("ConcurrentStreamsTests: \(Self.streams) sessions in \(opened - started), streams in \(clock.now - opened)")
                #expect(received.count == Self.streams)
                let failures = received.compactMap(\.failure)
                #expect(failures.isEmpty, "\(failures.count) streams failed, e.g. \(failures.prefix(3))")
                #expect(received.filter(\.doneBeforeAllStarted).isEmpty, "every stream was still open when the last one started")
                var completed = 0
                for stream in received where stream.failure == nil {
                    guard stream.status == 200, stream.events.last == "[DONE]", stream.events.count >= 4,
                        let opening = try? JSONCoding.decoder.decode(H.Event.self, from: Data(stream.events[0].utf8)),
                        opening.type == "message.started",
                        let event = try? JSONCoding.decoder.decode(H.Event.self, from: Data(stream.events[stream.events.count - 2].utf8)),
                        event.type == "message.completed", event.status == "complete", event.messageId != nil,
                        event.messageId == opening.messageId, event.conversationId == opening.conversationId,
                        event.sources?.map(\.documentId) == [document]
                    else { continue }
                    let deltas = stream.events.dropFirst().dropLast(2).compactMap { try? JSONCoding.decoder.decode(H.Event.self, from: Data($0.utf8)) }
                    guard deltas.allSatisfy({ $0.type == "text.delta" }), deltas.compactMap(\.delta).joined() == event.content else { continue }
                    completed += 1
                }
                #expect(completed == Self.streams)
            } catch {
                try? await client.shutdown()
                throw error
            }
            try await client.shutdown()

            // What chat holds: one conversation per session with both messages, every answer
            // complete with its trace and its usage event for billing.
            let count = { (query: PostgresQuery) in try await H.count(database, query) }
            #expect(try await count("SELECT count(*)::int FROM conversations WHERE tenant_id = \(tenantID) AND message_count = 2") == Self.streams)
            #expect(try await count("SELECT count(*)::int FROM messages WHERE tenant_id = \(tenantID) AND role = 'user'") == Self.streams)
            #expect(
                try await count(
                    "SELECT count(*)::int FROM messages WHERE tenant_id = \(tenantID) AND role = 'assistant' AND status = 'complete' AND responder = 'builtin'"
                ) == Self.streams
            )
            #expect(try await count("SELECT count(*)::int FROM chat_traces WHERE tenant_id = \(tenantID) AND status = 'complete'") == Self.streams)
            #expect(try await count("SELECT count(*)::int FROM outbox_events WHERE type = 'chat.message_answered'") == Self.streams)
        }
    }

    /// Widget sessions straight into chat's table, in one statement (opening them is not what is
    /// under test here, and 1,000 `POST /api/sessions/init` took half the test's time).
    static func insertSessions(_ count: Int, tenantID: UUID, database: DatabaseConfig) async throws -> [String] {
        let sessions = (0..<count).map { _ in PostgresSessionRepository.newSessionID() }
        _ = try await TestPostgres.withClient(database) { client in
            try await client.query(
                "INSERT INTO widget_sessions (id, tenant_id, expires_at) SELECT unnest(\(sessions)::text[]), \(tenantID), now() + interval '1 day'"
            )
        }
        return sessions
    }

    static func stream(client: HTTPClient, url: String, session: String, message: String, barrier: Barrier) async -> Received {
        var received = Received()
        var arrived = false
        do {
            var request = HTTPClientRequest(url: url)
            request.method = .POST
            request.headers.add(name: "X-Session-ID", value: session)
            request.headers.add(name: "Content-Type", value: "application/json")
            let body = try JSONCoding.encoder.encode(["messages": [["role": "user", "content": message]]])
            request.body = .bytes(ByteBuffer(bytes: body))
            let response = try await client.execute(request, timeout: .seconds(90))
            received.status = Int(response.status.code)
            var pending = ""
            for try await chunk in response.body {
                pending += String(buffer: chunk)
                while let range = pending.range(of: "\n\n") {
                    let frame = String(pending[..<range.lowerBound])
                    pending.removeSubrange(..<range.upperBound)
                    for line in frame.split(separator: "\n") where line.hasPrefix("data: ") { received.events.append(String(line.dropFirst(6))) }
                }
                if !arrived, !received.events.isEmpty {
                    arrived = true
                    received.doneBeforeAllStarted = received.events.last == "[DONE]"
                    await barrier.arriveAndWait()
                }
            }
        } catch {
            received.failure = "\(error)"
        }
        if !arrived {
            received.failure = received.failure ?? "no event (status \(received.status))"
            await barrier.arrive()
        }
        return received
    }

    /// The test process holds both ends of every stream: lift the soft limit on open files as far as allowed.
    static func raiseOpenFileLimit(to wanted: Int) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < rlim_t(wanted) else { return }
        limit.rlim_cur = min(limit.rlim_max, rlim_t(wanted))
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
}

/// Lets `parties` tasks wait until all of them have arrived; a task that fails arrives without waiting.
actor Barrier {
    let parties: Int
    private var arrived = 0
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(parties: Int) { self.parties = parties }

    func arriveAndWait() async {
        arrive()
        guard arrived < parties else { return }
        await withCheckedContinuation { waiting.append($0) }
    }

    func arrive() {
        arrived += 1
        if arrived >= parties {
            for continuation in waiting { continuation.resume() }
            waiting.removeAll()
        }
    }
}
