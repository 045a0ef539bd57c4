import Foundation
import InternalAPI

/// The offline responder: answers from the retrieved chunks of the tenant's knowledge base in the
/// agent's tone, greets on first contact, cites the files it answered from, and says plainly when
/// it found nothing. Streamed word by word, pausing between words the way a model streams tokens.
struct BuiltinResponder: ReplyGenerator {
    let tokenDelay: Duration
    var name: String { "builtin" }

    func reply(_ context: ReplyContext) -> AsyncThrowingStream<String, any Error> {
        WordStream.paced(WordStream.tokens(of: Self.compose(context)), delay: tokenDelay)
    }

    /// The whole reply text.
    static func compose(_ context: ReplyContext) -> String {
        let agent = context.agent
        guard let message = context.userMessage else { return agent.greetingMessage }
        var parts: [String] = []
        if context.isFirstContact { parts.append(agent.greetingMessage) }
        let best = context.chunks.prefix(3)
        if best.isEmpty {
            parts.append(unknown(agent.tone))
        } else {
            let passage = excerpt(from: Array(best), for: message)
            parts.append(intro(agent.tone) + " " + passage)
            var files: [String] = []
            for chunk in best where !files.contains(chunk.filename) { files.append(chunk.filename) }
            parts.append((files.count == 1 ? "Source: " : "Sources: ") + files.joined(separator: ", "))
        }
        return parts.joined(separator: "\n\n")
    }

    static func intro(_ tone: AgentConfiguration.Tone) -> String {
        switch tone {
        case .friendly: "Here's what I found for you:"
        case .professional: "According to our documentation:"
        case .casual: "So, here's the deal:"
        case .formal: "According to the information available to us:"
        }
    }

    static func unknown(_ tone: AgentConfiguration.Tone) -> String {
        switch tone {
        case .friendly: "I'm sorry, I don't know the answer to that: I couldn't find anything about it in the information I have."
        case .professional: "I don't know the answer to that: our documentation does not cover it."
        case .casual: "Hmm, I don't know that one: nothing in what I have covers it."
        case .formal: "I regret that I do not know the answer: the information available to us does not address it."
        }
    }

    /// The sentences of the best chunks that share the most words with the message (at most three,
    /// in their original order), or the best chunk's start when no sentence stands out.
    static func excerpt(from chunks: [RetrievedChunk], for message: String) -> String {
        let wanted = Set(words(message).filter { $0.count > 2 })
        var scored: [(score: Int, order: Int, text: String)] = []
        var order = 0
        for chunk in chunks {
            for sentence in sentences(chunk.content) {
                let score = Set(words(sentence)).intersection(wanted).count
                if score > 0 { scored.append((score, order, sentence)) }
                order += 1
            }
        }
        let chosen = scored.sorted { ($0.score, -$0.order) > ($1.score, -$1.order) }.prefix(3).sorted { $0.order < $1.order }
        if chosen.isEmpty { return String(chunks[0].content.prefix(600)) }
        return chosen.map(\.text).joined(separator: " ")
    }

    /// Sentences end at `.`, `!` or `?` followed by whitespace, and at line breaks.
    static func sentences(_ text: String) -> [String] {
        var result: [String] = []
        var current = ""
        var previous: Character?
        func flush() {
            let sentence = current.trimmingCharacters(in: .whitespacesAndNewlines)
            if !sentence.isEmpty { result.append(String(sentence.prefix(600))) }
            current = ""
        }
        for character in text {
            if character.isNewline {
                flush()
            } else if character.isWhitespace, let previous, ".!?".contains(previous) {
                flush()
            } else {
                current.append(character)
            }
            previous = character
        }
        flush()
        return result
    }

    static func words(_ text: String) -> [String] {
        text.lowercased().split(whereSeparator: { !($0.isLetter || $0.isNumber) }).map(String.init)
    }
}
