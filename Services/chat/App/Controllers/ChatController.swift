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
        var messageId: UUID?
        var conversationId: UUID?
        var content: String
        var status: String
        var sources: [MessageSource]
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
        let outcome = await exchange.answer(prepared, logger: context.logger) { _ in }
        if let error = outcome.error {
            let status: HTTPResponse.Status = if case .timedOut = error { .gatewayTimeout } else { .badGateway }
            throw AppError(status, code: error.code, detail: error.publicDetail)
        }
        return JSONResponse(
            ChatResponse(
                messageId: outcome.messageID, conversationId: outcome.conversationID, content: outcome.text, status: outcome.status,
                sources: outcome.sources
            )
        )
    }
}
