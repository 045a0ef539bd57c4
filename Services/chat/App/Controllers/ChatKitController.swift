import Foundation
import Hummingbird
import InternalAPI
import Logging
import NIOCore
import ServiceCore

/// `POST /chatkit`: the widget's streaming chat endpoint (Server-Sent Events).
struct ChatKitController: Sendable {
    let sessions: any SessionRepository
    let directory: TenantDirectory
    /// The tenant's agent as its admins configured it (tenancy, reused a few seconds).
    let agents: InternalLookupCache<AgentConfiguration>
    let responder: any ReplyGenerator

    struct ChatRequest: Decodable {
        struct Message: Decodable {
            var role: String
            var content: String
        }
        var messages: [Message]?
    }

    /// One SSE `data:` payload.
    struct Event: Encodable {
        var type: String
        var delta: String?
        var content: String?
    }

    func addRoutes(to routes: RouteTable<AppRequestContext>) {
        routes.post("chatkit", use: chat)
    }

    @Sendable func chat(_ request: Request, context: AppRequestContext) async throws -> Response {
        guard let id = request.headers[.xSessionID], PostgresSessionRepository.isWellFormed(id),
            let session = try await sessions.active(id: id, logger: context.logger)
        else {
            throw AppError.rejectedCredentials("A valid X-Session-ID is required", code: "INVALID_SESSION")
        }
        let body = try await request.decodeOptionalJSON(as: ChatRequest.self, context: context)
        let userMessage = body?.messages?.last(where: { $0.role == "user" })?.content
        if let userMessage, userMessage.unicodeScalars.count > 8_000 {
            throw AppError.validation(["messages": ["a message must be at most 8000 characters"]])
        }
        guard let tenant = try await directory.tenant(id: session.tenantID, logger: context.logger) else {
            throw AppError.notFound("Unknown tenant", code: "TENANT_NOT_FOUND")
        }
        guard tenant.status != "suspended" else { throw AppError.forbidden("This account is suspended") }
        guard let agent = try await agents.value(path: "/internal/agent-configs/\(tenant.id.uuidString.lowercased())", logger: context.logger)
        else { throw AppError.notFound("Unknown tenant", code: "TENANT_NOT_FOUND") }
        if let userMessage {
            try await sessions.appendMessage(sessionID: session.id, tenantID: tenant.id, role: "user", content: userMessage, logger: context.logger)
        }

        let reply = responder.reply(to: userMessage, agent: agent)
        let sessions = self.sessions
        let logger = context.logger
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-cache", .init("X-Accel-Buffering")!: "no"],
            body: ResponseBody { writer in
                var full = ""
                for try await piece in reply {
                    full += piece
                    // Each event is written (and flushed) as soon as it is produced.
                    try await writer.write(Self.frame(Event(type: "text.delta", delta: piece)))
                }
                try await writer.write(Self.frame(Event(type: "message.completed", content: full)))
                try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                try await writer.finish(nil)
                do {
                    try await sessions.appendMessage(sessionID: session.id, tenantID: tenant.id, role: "assistant", content: full, logger: logger)
                } catch {
                    logger.error("could not store the assistant's reply", metadata: ["error": "\(error)"])
                }
            }
        )
    }

    static func frame(_ event: Event) throws -> ByteBuffer {
        let json = try JSONCoding.encoder.encode(event)
        var buffer = ByteBuffer(string: "data: ")
        buffer.writeBytes(json)
        buffer.writeString("\n\n")
        return buffer
    }
}
