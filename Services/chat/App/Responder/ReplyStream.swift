import Foundation
import InternalAPI

/// Produces the assistant's reply as a stream of text pieces.
protocol ReplyGenerator: Sendable {
    func reply(to userMessage: String?, agent: AgentConfiguration) -> AsyncThrowingStream<String, any Error>
}

/// The offline responder of this slice: it greets with the agent's configured greeting, word by
/// word, pausing between words the way a model streams tokens. Answering from the knowledge base
/// replaces it in a later change.
struct GreetingResponder: ReplyGenerator {
    let tokenDelay: Duration

    func reply(to userMessage: String?, agent: AgentConfiguration) -> AsyncThrowingStream<String, any Error> {
        let pieces = Self.tokens(of: agent.greetingMessage)
        let delay = tokenDelay
        return AsyncThrowingStream { continuation in
            let task = Task {
                for (index, piece) in pieces.enumerated() {
                    if index > 0, delay > .zero { try await Task.sleep(for: delay) }
                    continuation.yield(piece)
                }
                continuation.finish()
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
