import Foundation
import HTTPTypes
import Hummingbird
import InternalAPI
import Logging
import NIOCore
import ServiceCore

/// `POST /chatkit`: the widget's streaming chat endpoint (Server-Sent Events; the event format is
/// in the README, "Chat stream events").
struct ChatKitController: Sendable {
    let exchange: ChatExchange

    /// One SSE `data:` payload.
    struct Event: Encodable {
        var type: String
        var delta: String?
        var content: String?
        @LowercaseOptionalUUID var messageId: UUID?
        @LowercaseOptionalUUID var conversationId: UUID?
        var status: String?
        var sources: [MessageSource]?
        var code: String?
        var detail: String?
    }

    func addRoutes(to routes: RouteTable<AppRequestContext>) {
        routes.post("chatkit", use: chat)
    }

    @Sendable func chat(_ request: Request, context: AppRequestContext) async throws -> Response {
        let prepared = try await exchange.prepare(request, context: context)
        let exchange = self.exchange
        let logger = context.logger
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-cache", .init("X-Accel-Buffering")!: "no"],
            body: ResponseBody { writer in
                // The exchange is accepted (and the user's message stored): say so at once, with the
                // id the assistant's message will be stored under, before history and retrieval.
                let started = Event(type: "message.started", messageId: prepared.messageID, conversationId: prepared.conversation?.id)
                let opened = (try? await writer.write(Self.frame(started))) != nil
                // Each event is written (and flushed) as soon as it is produced; a write that fails
                // (the client has gone) stops the responder, which still stores what it said.
                let outcome = await exchange.answer(prepared, logger: logger) { piece in
                    guard opened else { throw CancellationError() }
                    try await writer.write(Self.frame(Event(type: "text.delta", delta: piece)))
                }
                if let error = outcome.error {
                    try await writer.write(
                        Self.frame(Event(type: "error", messageId: outcome.messageID, conversationId: outcome.conversationID, status: outcome.status, code: error.code, detail: error.publicDetail))
                    )
                } else {
                    try await writer.write(
                        Self.frame(
                            Event(
                                type: "message.completed", content: outcome.text, messageId: outcome.messageID, conversationId: outcome.conversationID,
                                status: outcome.status, sources: outcome.sources
                            )
                        )
                    )
                }
                try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
                try await writer.finish(nil)
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
