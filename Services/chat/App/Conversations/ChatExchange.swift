import Foundation
import Hummingbird
import InternalAPI
import Logging
import ServiceCore

/// One user message through chat, the same for `/chatkit` (streamed), `/api/chat` and the public
/// widget chat (one JSON body): the session and tenant are checked, billing's quota asked, the
/// guardrails applied, the message stored in the session's conversation (`prepare`: the exchange
/// is accepted, and the stream's first event can go out), then the conversation's history read and
/// the knowledge base searched, and the chosen responder's answer stored under the id `prepare`
/// gave it, with its trace and usage event (`answer`).
struct ChatExchange: Sendable {
    let sessions: any SessionRepository
    let directory: TenantDirectory
    /// The tenant's agent as its admins configured it (tenancy, reused a few seconds).
    let agents: InternalLookupCache<AgentConfiguration>
    let conversations: any ConversationRepository
    let retriever: any KnowledgeRetriever
    let responders: Responders
    let quota: QuotaGate
    /// How many chunks a reply is composed from.
    static let retrievalLimit = 5

    /// The body of every chat route: the widget's `messages` (the last `user` one is answered) or a single `message`.
    struct ChatRequest: Decodable {
        struct Message: Decodable {
            var role: String
            var content: String
        }
        var messages: [Message]?
        var message: String?
    }

    /// Everything checked and stored before the responder starts.
    struct Prepared: Sendable {
        var session: WidgetSession
        var conversation: Conversation?
        /// The id the assistant's message will be stored under (nil for the greeting-only opening, which stores nothing).
        var messageID: UUID?
        /// The user's message just stored (its history excludes it).
        var userMessageID: UUID?
        var responder: any ReplyGenerator
        /// Without history and chunks until `answer` reads them.
        var context: ReplyContext
        var guardrails: Guardrails
        /// A blocked term was found: the refusal is the answer and no responder is asked.
        var refused: Bool
    }

    /// How the answer ended, once stored.
    struct Outcome: Sendable {
        var text: String
        var status: String
        var messageID: UUID?
        var conversationID: UUID?
        var sources: [MessageSource]
        var error: ResponderError?
    }

    static let maxMessageCharacters = 8_000
    static let maxMessages = 100

    /// White space as the API's JSON Schema patterns (ECMA-262 `\s`) mean it, so a message the
    /// schema calls blank is refused here and no other: Foundation's set without U+0085, with U+FEFF.
    static let whiteSpace: CharacterSet = {
        var set = CharacterSet.whitespacesAndNewlines
        set.remove("\u{85}")
        set.insert("\u{FEFF}")
        return set
    }()

    /// The user's message of `body`; nil when there is none (the widget opening: the greeting answers).
    /// Every message sent must be non-blank and at most 8000 characters; roles other than `user` are ignored.
    static func userMessage(of body: ChatRequest?) throws -> String? {
        guard let body else { return nil }
        var problems: [String: [String]] = [:]
        func check(_ text: String, _ field: String) {
            if text.trimmingCharacters(in: whiteSpace).isEmpty {
                problems[field] = ["a message must not be blank"]
            } else if text.unicodeScalars.count > maxMessageCharacters {
                problems[field] = ["a message must be at most \(maxMessageCharacters) characters"]
            }
        }
        if let message = body.message { check(message, "message") }
        if let messages = body.messages {
            if messages.count > maxMessages { problems["messages"] = ["must hold at most \(maxMessages) messages"] }
            for message in messages.prefix(maxMessages) { check(message.content, "messages") }
        }
        guard problems.isEmpty else { throw AppError.validation(problems) }
        return body.message ?? body.messages?.last(where: { $0.role == "user" })?.content
    }

    /// The session of `X-Session-ID`, or 401.
    func session(of request: Request, logger: Logger) async throws -> WidgetSession {
        guard let id = request.headers[.xSessionID], PostgresSessionRepository.isWellFormed(id),
            let session = try await sessions.active(id: id, logger: logger)
        else {
            throw AppError.rejectedCredentials("A valid X-Session-ID is required", code: "INVALID_SESSION")
        }
        return session
    }

    /// Checks everything and stores the user's message: what must hold before the exchange is
    /// accepted (the stream's first event). History and retrieval are left to `answer`, so nothing
    /// slow comes before that event (tenancy's and billing's answers are cached). `pathTenant` (the
    /// public widget route's id) and an `X-Tenant-Slug` header must name the session's own tenant:
    /// another tenant answers 404, as an unknown one does.
    func prepare(_ request: Request, context: AppRequestContext, pathTenant: UUID? = nil) async throws -> Prepared {
        let session = try await session(of: request, logger: context.logger)
        if let pathTenant, pathTenant != session.tenantID { throw AppError.notFound("Unknown tenant", code: "TENANT_NOT_FOUND") }
        let body = try await request.decodeOptionalJSON(as: ChatRequest.self, context: context)
        let message = try Self.userMessage(of: body)
        guard let tenant = try await directory.tenant(id: session.tenantID, logger: context.logger) else {
            throw AppError.notFound("Unknown tenant", code: "TENANT_NOT_FOUND")
        }
        if let slug = request.headers[.xTenantSlug], slug.lowercased() != tenant.slug {
            throw AppError.notFound("Unknown tenant", code: "TENANT_NOT_FOUND")
        }
        guard tenant.status != "suspended" else { throw AppError.forbidden("This account is suspended") }
        guard let agent = try await agents.value(path: "/internal/agent-configs/\(tenant.id.uuidString.lowercased())", logger: context.logger)
        else { throw AppError.notFound("Unknown tenant", code: "TENANT_NOT_FOUND") }
        let guardrails = Guardrails(agent.guardrailConfig)
        let responder = responders.responder(for: agent)
        guard let message else {
            // The widget opening: the greeting, nothing asked of billing or a provider.
            let context = ReplyContext(userMessage: nil, history: [], chunks: [], agent: agent, isFirstContact: true)
            return Prepared(
                session: session, conversation: nil, messageID: nil, userMessageID: nil, responder: responders.greeter, context: context,
                guardrails: guardrails, refused: false
            )
        }
        // Billing first: an over-quota tenant's message is 402 before anything is stored, searched or
        // judged by the guardrails (a blocked term too), and no provider is asked.
        try await quota.check(tenantID: tenant.id, logger: context.logger)
        let conversation = try await conversations.open(sessionID: session.id, tenantID: tenant.id, logger: context.logger)
        let redacted = guardrails.redact(message)
        let userMessageID = try await conversations.addUserMessage(redacted, conversation: conversation, logger: context.logger)
        let refused = guardrails.blockedTerm(in: message) != nil
        let replyContext = ReplyContext(
            userMessage: redacted, history: [], chunks: [], agent: agent, isFirstContact: conversation.messageCount == 0
        )
        return Prepared(
            session: session, conversation: conversation, messageID: UUID(), userMessageID: userMessageID, responder: responder,
            context: replyContext, guardrails: guardrails, refused: refused
        )
    }

    /// The conversation's earlier turns and the knowledge base's best chunks for the message
    /// (neither for a refused message: the refusal answers it, nor for the greeting-only opening).
    func gather(_ prepared: Prepared, logger: Logger) async throws -> ReplyContext {
        var context = prepared.context
        guard let conversation = prepared.conversation, let message = context.userMessage, !prepared.refused else { return context }
        context.history = try await conversations.recentTurns(
            conversationID: conversation.id, tenantID: conversation.tenantID, excluding: prepared.userMessageID, limit: 20, logger: logger
        )
        context.chunks = try await retriever.search(tenantID: conversation.tenantID, query: message, limit: Self.retrievalLimit, logger: logger)
        return context
    }

    /// Reads the history and searches the knowledge base (`gather`), runs the responder, handing
    /// each piece to `emit` (which throws when the client has gone: generation then stops), and
    /// stores what was said under `prepared.messageID`, however it ended.
    func answer(_ prepared: Prepared, logger: Logger, emit: (String) async throws -> Void) async -> Outcome {
        let started = ContinuousClock.now
        var firstToken: Duration?
        var text = ""
        var clientGone = false
        var failure: ResponderError?
        var prepared = prepared
        do {
            prepared.context = try await gather(prepared, logger: logger)
        } catch {
            failure = .knowledgeBase("\(error)")
        }
        let stream: AsyncThrowingStream<String, any Error> =
            if failure != nil {
                AsyncThrowingStream { $0.finish() }
            } else if prepared.refused {
                WordStream.paced(WordStream.tokens(of: Guardrails.refusal), delay: .zero)
            } else {
                prepared.responder.reply(prepared.context)
            }
        do {
            for try await piece in stream {
                if firstToken == nil { firstToken = .now - started }
                text += piece
                do {
                    try await emit(piece)
                } catch {
                    clientGone = true
                    break
                }
            }
        } catch let error as ResponderError {
            failure = error
        } catch {
            failure = .unreadable("\(error)")
        }
        if let failure { logger.warning("responder failed", metadata: ["responder": "\(prepared.responder.name)", "error": "\(failure)"]) }
        let sources = prepared.refused ? [] : Self.sources(of: prepared.context.chunks, usedIn: text, responder: prepared.responder.name)
        let status = prepared.refused ? "refused" : (clientGone || failure != nil ? "partial" : "complete")
        var outcome = Outcome(text: text, status: status, messageID: nil, conversationID: prepared.conversation?.id, sources: sources, error: failure)
        guard let conversation = prepared.conversation, let messageID = prepared.messageID else { return outcome }
        let total = ContinuousClock.now - started
        let answer = FinishedAnswer(
            tenantID: conversation.tenantID, sessionID: conversation.sessionID, conversationID: conversation.id, messageID: messageID,
            content: text.isEmpty ? nil : prepared.guardrails.redact(text), status: status, sources: sources,
            responder: prepared.refused ? "guardrails" : prepared.responder.name, counts: !prepared.refused && !text.isEmpty,
            trace: TraceRecord(
                firstTokenMilliseconds: firstToken.map(Self.milliseconds), totalMilliseconds: Self.milliseconds(total),
                chunks: prepared.context.chunks.map { TracedChunk(chunkId: $0.id, documentId: $0.documentID, score: $0.score) },
                words: text.split(whereSeparator: \.isWhitespace).count, error: failure?.description ?? (clientGone ? "client disconnected" : nil)
            )
        )
        // Stored in a task of its own: a request whose client has gone may be cancelled, the record must not be.
        let conversations = conversations
        do {
            outcome.messageID = try await Task { try await conversations.finish(answer, logger: logger) }.value
        } catch {
            logger.error("could not store the assistant's reply", metadata: ["error": "\(error)"])
        }
        return outcome
    }

    /// The chunks' files, once each, best first. The builtin responder cites what it used; an
    /// external model is given them all as context.
    static func sources(of chunks: [RetrievedChunk], usedIn text: String, responder: String) -> [MessageSource] {
        var seen = Set<UUID>()
        let used = responder == "builtin" ? Array(chunks.prefix(3)) : chunks
        return used.compactMap { chunk in
            guard seen.insert(chunk.documentID).inserted else { return nil }
            return MessageSource(documentId: chunk.documentID, chunkId: chunk.id, filename: chunk.filename, score: chunk.score)
        }
    }

    static func milliseconds(_ duration: Duration) -> Int {
        Int(duration.components.seconds * 1_000 + duration.components.attoseconds / 1_000_000_000_000_000)
    }
}
