import Foundation
import InternalAPI

/// One earlier turn of the conversation, as a responder sees it.
struct ChatTurn: Sendable, Equatable {
    var role: String
    var content: String
}

/// A chunk of the tenant's knowledge base that retrieval found for the user's message.
struct RetrievedChunk: Sendable, Equatable {
    var id: UUID
    var documentID: UUID
    var filename: String
    var content: String
    var score: Double
}

/// Everything a responder answers from: the message (nil when the widget opens and only the
/// greeting is wanted), the conversation so far, what retrieval found, and the tenant's agent.
struct ReplyContext: Sendable {
    var userMessage: String?
    var history: [ChatTurn]
    var chunks: [RetrievedChunk]
    var agent: AgentConfiguration
    /// No message of this conversation came before: the reply opens with the greeting.
    var isFirstContact: Bool
}

/// Produces the assistant's reply as a stream of text pieces. Ending the consumption of the
/// stream (the client went away) cancels the work behind it, upstream calls included.
protocol ReplyGenerator: Sendable {
    /// What traces and stored messages call it (`builtin`, `openai`).
    var name: String { get }
    func reply(_ context: ReplyContext) -> AsyncThrowingStream<String, any Error>
}

/// The responders by name: `CHAT_RESPONDER` picks the default, a tenant's agent configuration
/// (`responder`) may pick another.
struct Responders: Sendable {
    let byName: [String: any ReplyGenerator]
    let defaultName: String

    func responder(for agent: AgentConfiguration) -> any ReplyGenerator {
        if let name = agent.responder, let chosen = byName[name] { return chosen }
        return byName[defaultName] ?? byName["builtin"]!
    }

    /// The widget's opening (no message): the agent's greeting as its admins wrote it, by the
    /// offline responder, so no provider is asked (nor paid) for it, whatever the tenant's quota.
    var greeter: any ReplyGenerator { byName["builtin"]! }
}

enum WordStream {
    /// `pieces` one by one, `delay` apart, the way a model streams tokens; cancelled with its consumer.
    static func paced(_ pieces: [String], delay: Duration) -> AsyncThrowingStream<String, any Error> {
        AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    for (index, piece) in pieces.enumerated() {
                        if index > 0, delay > .zero { try await Task.sleep(for: delay) }
                        continuation.yield(piece)
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// Splits text into words, each keeping the whitespace that follows it, so joining restores it.
    static func tokens(of text: String) -> [String] {
        var tokens: [String] = []
        var current = ""
        for character in text {
            if character.isWhitespace {
                current.append(character)
            } else {
                if let last = current.last, last.isWhitespace {
                    tokens.append(current)
                    current = ""
                }
                current.append(character)
            }
        }
        if !current.isEmpty { tokens.append(current) }
        return tokens
    }
}
