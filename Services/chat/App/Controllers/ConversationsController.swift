import Foundation
import HTTPTypes
import Hummingbird
import ServiceCore

/// `GET /api/conversations` and `GET /api/conversations/{id}/messages`: a widget session's own
/// history, or all of a tenant's for its admins (see `ChatAccess`). Paginated with `limit`/`offset`.
struct ConversationsController: Sendable {
    let access: ChatAccess
    let conversations: any ConversationRepository

    struct ConversationView: Codable, Sendable {
        @LowercaseUUID var id: UUID
        var sessionId: String
        var messageCount: Int
        var createdAt: Date
        var updatedAt: Date
    }

    struct ConversationList: Codable, Sendable {
        var conversations: [ConversationView]
        var total: Int
        var limit: Int
        var offset: Int
    }

    struct MessageView: Codable, Sendable {
        @LowercaseUUID var id: UUID
        var role: String
        var content: String
        var status: String
        var sources: [MessageSource]
        var createdAt: Date
    }

    struct MessageList: Codable, Sendable {
        @LowercaseUUID var conversationId: UUID
        var messages: [MessageView]
        var total: Int
        var limit: Int
        var offset: Int
    }

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        group.get("conversations", use: list)
        group.get("conversations/:conversationID/messages", use: messages)
    }

    @Sendable func list(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<ConversationList> {
        let viewer = try await access.viewer(request, context: context)
        var problems: [String: [String]] = [:]
        let paging = Paging(request, problems: &problems)
        guard problems.isEmpty else { throw AppError.validation(problems) }
        let page = try await conversations.conversations(
            tenantID: viewer.tenantID, sessionID: viewer.sessionID, limit: paging.limit, offset: paging.offset, logger: context.logger
        )
        return JSONResponse(
            ConversationList(
                conversations: page.items.map {
                    ConversationView(id: $0.id, sessionId: $0.sessionID, messageCount: $0.messageCount, createdAt: $0.createdAt, updatedAt: $0.updatedAt)
                },
                total: page.total, limit: paging.limit, offset: paging.offset
            )
        )
    }

    @Sendable func messages(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<MessageList> {
        let viewer = try await access.viewer(request, context: context)
        var problems: [String: [String]] = [:]
        let paging = Paging(request, problems: &problems)
        guard problems.isEmpty else { throw AppError.validation(problems) }
        let notFound = AppError.notFound("Conversation not found", code: "CONVERSATION_NOT_FOUND")
        guard let raw = context.parameters.get("conversationID"), let id = UUID(uuidString: raw),
            let conversation = try await conversations.conversation(id: id, tenantID: viewer.tenantID, logger: context.logger)
        else { throw notFound }
        if let sessionID = viewer.sessionID, conversation.sessionID != sessionID { throw notFound }
        let page = try await conversations.messages(
            conversationID: conversation.id, tenantID: viewer.tenantID, limit: paging.limit, offset: paging.offset, logger: context.logger
        )
        return JSONResponse(
            MessageList(
                conversationId: conversation.id,
                messages: page.items.map {
                    MessageView(id: $0.id, role: $0.role, content: $0.content, status: $0.status, sources: $0.sources, createdAt: $0.createdAt)
                },
                total: page.total, limit: paging.limit, offset: paging.offset
            )
        )
    }
}
