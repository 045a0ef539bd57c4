import Foundation
import InternalAPI
import NIOCore
import Testing

@testable import ChatApp

/// The pure parts of answering: guardrails, PII redaction, the builtin responder's composition,
/// the retrieval query and the provider stream's line splitting.
@Suite("chat guardrails and composition")
struct GuardrailsTests {
    static func agent(tone: AgentConfiguration.Tone = .friendly, blocked: [String] = [], pii: Bool = false) -> AgentConfiguration {
        AgentConfiguration(
            tenantId: UUID().uuidString.lowercased(), agentName: "Ava", tone: tone, greetingMessage: "Hi! I'm Ava.", temperature: 0.7,
            maxTokens: 500, model: "gpt-4o-mini", storeContext: [:], guardrailConfig: .init(piiRedaction: pii, blockedTerms: blocked),
            updatedAt: Date()
        )
    }

    @Test func blockedTermsMatchWholeWordsWhateverTheCase() {
        let guardrails = Guardrails(.init(piiRedaction: false, blockedTerms: ["Competitor", "free money"]))
        #expect(guardrails.blockedTerm(in: "What about your COMPETITOR?") == "competitor")
        #expect(guardrails.blockedTerm(in: "Is there free   money here") == "free money")
        #expect(guardrails.blockedTerm(in: "competitors are fine") == nil)
        #expect(guardrails.blockedTerm(in: "money for free") == nil)
        #expect(Guardrails(.init(piiRedaction: false, blockedTerms: [])).blockedTerm(in: "anything") == nil)
    }

    @Test func emailsPhonesAndLuhnValidCardsAreRedacted() {
        let text = "Mail ana.perez+shop@example.co.uk or call +1 (555) 123-4567, card 4111 1111 1111 1111, order 1234567812345678."
        let redacted = PIIRedactor.redact(text)
        #expect(redacted == "Mail [email] or call [phone], card [card], order 1234567812345678.")
        #expect(PIIRedactor.redact("4111-1111-1111-1111") == "[card]")
        #expect(PIIRedactor.redact("call 555 123 4567 now") == "call [phone] now")
        #expect(PIIRedactor.redact("we open at 9 and close at 17") == "we open at 9 and close at 17")
        #expect(PIIRedactor.luhnValid("4111111111111111"))
        #expect(PIIRedactor.luhnValid("5555555555554444"))
        #expect(!PIIRedactor.luhnValid("1234567812345678"))
        #expect(!PIIRedactor.luhnValid("4111"))
        // Off unless the tenant asks for it.
        #expect(Guardrails(.init(piiRedaction: false, blockedTerms: [])).redact("a@b.io") == "a@b.io")
        #expect(Guardrails(.init(piiRedaction: true, blockedTerms: [])).redact("a@b.io") == "[email]")
    }

    @Test func theBuiltinReplyGreetsCitesAndAdmitsWhatItDoesNotKnow() {
        let chunk = RetrievedChunk(
            id: UUID(), documentID: UUID(), filename: "hours.md",
            content: "We sell bread. The bakery opens at 7am on weekdays and 9am on Sundays. Parking is free.", score: 0.5
        )
        var context = ReplyContext(userMessage: "When does the bakery open?", history: [], chunks: [chunk], agent: Self.agent(), isFirstContact: true)
        let first = BuiltinResponder.compose(context)
        #expect(first.hasPrefix("Hi! I'm Ava."))
        #expect(first.contains("The bakery opens at 7am on weekdays and 9am on Sundays."))
        #expect(!first.contains("Parking"))
        #expect(first.hasSuffix("Source: hours.md"))
        context.isFirstContact = false
        context.agent = Self.agent(tone: .formal)
        let later = BuiltinResponder.compose(context)
        #expect(later.hasPrefix(BuiltinResponder.intro(.formal)))
        context.chunks = []
        #expect(BuiltinResponder.compose(context) == BuiltinResponder.unknown(.formal))
        #expect(BuiltinResponder.unknown(.formal).contains("do not know"))
        context.userMessage = nil
        #expect(BuiltinResponder.compose(context) == "Hi! I'm Ava.")
        #expect(WordStream.tokens(of: "Hi there,  friend!") == ["Hi ", "there,  ", "friend!"])
    }

    @Test func theRetrievalTermsAreTheDistinctWords() {
        #expect(PostgresKnowledgeRetriever.terms("When does the Bakery open? open!") == "when does the bakery open")
        #expect(PostgresKnowledgeRetriever.terms("'; DROP TABLE x; --") == "drop table")
        #expect(PostgresKnowledgeRetriever.terms("Tea or coffee?") == "tea or coffee")
        #expect(PostgresKnowledgeRetriever.terms("? ! a") == nil)
    }

    @Test func providerLinesAreSplitHoweverTheBytesArrive() throws {
        var parser = SSELineParser()
        #expect(parser.feed(ByteBuffer(string: "data: {\"choices\":[{\"delta\":{\"con")).isEmpty)
        #expect(parser.feed(ByteBuffer(string: "tent\":\"Hel\"}}]}\r\n\r\ndata: [DO")) == [#"data: {"choices":[{"delta":{"content":"Hel"}}]}"#, ""])
        #expect(parser.feed(ByteBuffer(string: "NE]\n")) == ["data: [DONE]"])
        var pieces: [String] = []
        #expect(try OpenAIResponder.handle(line: #"data: {"choices":[{"delta":{"content":"Hel"}}]}"#) { pieces.append($0) } == false)
        #expect(try OpenAIResponder.handle(line: #"data: {"choices":[{"delta":{"role":"assistant"}}]}"#) { pieces.append($0) } == false)
        #expect(try OpenAIResponder.handle(line: ": keep-alive") { pieces.append($0) } == false)
        #expect(try OpenAIResponder.handle(line: "data: [DONE]") { pieces.append($0) })
        #expect(pieces == ["Hel"])
        #expect(throws: ResponderError.self) { try OpenAIResponder.handle(line: "data: {nope") { _ in } }
    }
}
