import Foundation
import HTTPTypes
import Hummingbird
import InternalAPI
import ServiceCore

/// `POST /api/chat` and the public widget chat `POST /api/public/widgets/{tenant_id}/chat`: the
/// same exchange as `/chatkit`, answered as one JSON body once the reply is complete.
struct ChatController: Sendable {
    let exchange: ChatExchange

    struct ChatResponse: Codable, Sendable {
        /// Why the responder stopped, as the stream's `error` event says it.
        struct Failure: Codable, Sendable {
            var code: String
            var detail: String
        }
        @LowercaseOptionalUUID var messageId: UUID?
        @LowercaseOptionalUUID var conversationId: UUID?
        var content: String
        /// `complete`, `refused`, `partial` (the responder failed after saying something) or `failed`.
        var status: String
        var sources: [MessageSource]
        var error: Failure?
    }

    func addRoutes(api: RouterGroup<AppRequestContext>, publicWidgets: RouterGroup<AppRequestContext>) {
        api.post("chat", use: chat)
        publicWidgets.post(":tenantID/chat", use: widgetChat)
    }

    @Sendable func chat(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<ChatResponse> {
        try await answer(try await exchange.prepare(request, context: context), context: context)
    }

    /// The session must belong to the tenant of the path; another tenant's id answers 404.
    @Sendable func widgetChat(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<ChatResponse> {
        guard let raw = context.parameters.get("tenantID"), let tenantID = UUID(uuidString: raw) else {
            throw AppError.notFound("Unknown tenant", code: "TENANT_NOT_FOUND")
        }
        return try await answer(try await exchange.prepare(request, context: context, pathTenant: tenantID), context: context)
    }

    private func answer(_ prepared: ChatExchange.Prepared, context: AppRequestContext) async throws -> JSONResponse<ChatResponse> {
        // A responder's failure is part of the answer, as in the stream (an `error` event after a 200):
        // the message was accepted and stored, only the assistant could not (fully) reply.
        let outcome = await exchange.answer(prepared, logger: context.logger) { _ in }
        return JSONResponse(
            ChatResponse(
                messageId: outcome.messageID, conversationId: outcome.conversationID, content: outcome.text,
                status: outcome.error != nil && outcome.text.isEmpty ? "failed" : outcome.status, sources: outcome.sources,
                error: outcome.error.map { ChatResponse.Failure(code: $0.code, detail: $0.publicDetail) }
            )
        )
    }
}
