import AsyncHTTPClient
import Foundation
import InternalAPI
import Logging
import NIOCore
import NIOHTTP1
import ServiceCore
import Synchronization

/// Where and how to reach an OpenAI-compatible chat-completions endpoint.
struct OpenAISettings: Sendable {
    /// Up to and including the version, e.g. `https://api.openai.com/v1`.
    var baseURL: String
    var apiKey: String?
    var model: String
    /// No token (or no answer) within it ends the reply with an error.
    var timeout: Duration
}

/// Why the provider produced no (complete) answer; shown to the widget as an SSE error event.
enum ResponderError: Error, CustomStringConvertible, Equatable {
    case timedOut(seconds: Int)
    case provider(status: Int, message: String)
    case unreadable(String)
    /// The history or the knowledge base could not be read before the responder was asked.
    case knowledgeBase(String)

    var code: String {
        switch self {
        case .timedOut: "RESPONDER_TIMEOUT"
        case .provider(let status, _): status == 429 ? "RESPONDER_RATE_LIMITED" : "RESPONDER_ERROR"
        case .unreadable, .knowledgeBase: "RESPONDER_ERROR"
        }
    }

    /// What the widget's user is told (never the provider's own words, which may name keys or models).
    var publicDetail: String {
        switch self {
        case .timedOut: "The assistant took too long to answer; please try again"
        case .provider(429, _): "The assistant is busy right now; please try again shortly"
        case .provider, .unreadable, .knowledgeBase: "The assistant could not answer right now; please try again"
        }
    }

    var description: String {
        switch self {
        case .timedOut(let seconds): "no token from the provider within \(seconds) s"
        case .provider(let status, let message): "provider answered \(status): \(message)"
        case .unreadable(let reason): "unreadable provider stream: \(reason)"
        case .knowledgeBase(let reason): "history or knowledge base unreadable: \(reason)"
        }
    }
}

/// Streams replies from an OpenAI-compatible `POST {base}/chat/completions` with `stream: true`:
/// the tenant's system prompt, temperature and max_tokens, the retrieved chunks as context, the
/// conversation so far. Reads the `data: {...}` lines as they arrive; cancelling the consumer
/// cancels the request.
struct OpenAIResponder: ReplyGenerator {
    let settings: OpenAISettings
    let http: HTTPClient
    let logger: Logger
    var name: String { "openai" }

    struct CompletionRequest: Encodable {
        struct Message: Encodable {
            var role: String
            var content: String
        }
        var model: String
        var messages: [Message]
        var temperature: Double
        var maxTokens: Int
        var stream: Bool

        enum CodingKeys: String, CodingKey {
            case model, messages, temperature, stream
            case maxTokens = "max_tokens"
        }
    }

    struct StreamChunk: Decodable {
        struct Choice: Decodable {
            struct Delta: Decodable { var content: String? }
            var delta: Delta?
        }
        var choices: [Choice]
    }

    struct ProviderErrorBody: Decodable {
        struct Detail: Decodable { var message: String? }
        var error: Detail?
    }

    func reply(_ context: ReplyContext) -> AsyncThrowingStream<String, any Error> {
        let settings = settings
        let http = http
        let logger = logger
        return AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    try await Self.stream(Self.request(for: context, settings: settings), settings: settings, http: http, logger: logger) {
                        continuation.yield($0)
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// The client for the provider: one connection per answer in flight (HTTP/1 streams, or HTTP/2
    /// where the provider offers it), up to `maxConnections`; no read timeout of its own beyond
    /// the responder's watchdog (`timeout` between tokens) plus a margin.
    static func makeClient(maxConnections: Int, timeout: Duration) -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(10), read: .seconds(timeout.components.seconds + 30))
        configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = maxConnections
        configuration.decompression = .disabled
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    static func request(for context: ReplyContext, settings: OpenAISettings) -> CompletionRequest {
        let agent = context.agent
        var system = "You are \(agent.agentName), the assistant of this business. Answer in a \(agent.tone.rawValue) tone. "
            + "Answer only from the context below; when it does not hold the answer, say plainly that you do not know. "
            + "Cite the file names you used."
        if !agent.storeContext.isEmpty, let facts = try? JSONCoding.encoder.encode(agent.storeContext) {
            system += "\n\nBusiness facts (JSON): " + String(decoding: facts, as: UTF8.self)
        }
        if !context.chunks.isEmpty {
            system += "\n\nContext:\n" + context.chunks.map { "[\($0.filename)]\n\($0.content)" }.joined(separator: "\n\n")
        }
        var messages = [CompletionRequest.Message(role: "system", content: system)]
        messages += context.history.suffix(20).map { .init(role: $0.role, content: $0.content) }
        if let message = context.userMessage { messages.append(.init(role: "user", content: message)) }
        return CompletionRequest(model: settings.model, messages: messages, temperature: agent.temperature, maxTokens: agent.maxTokens, stream: true)
    }

    /// Sends the request and hands each content delta to `yield` as it arrives. Throws
    /// `ResponderError.timedOut` when nothing arrives within the timeout, whether before the
    /// answer's head or between two lines.
    static func stream(
        _ body: CompletionRequest, settings: OpenAISettings, http: HTTPClient, logger: Logger, yield: @escaping @Sendable (String) -> Void
    ) async throws {
        var request = HTTPClientRequest(url: settings.baseURL.trimmingSuffix("/") + "/chat/completions")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Accept", value: "text/event-stream")
        if let key = settings.apiKey, !key.isEmpty { request.headers.add(name: "Authorization", value: "Bearer \(key)") }
        request.body = .bytes(ByteBuffer(bytes: try JSONCoding.encoder.encode(body)))
        let lastProgress = ProgressMark()
        let timeout = settings.timeout
        let prepared = request
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                let response = try await http.execute(prepared, timeout: .hours(1), logger: logger)
                lastProgress.touch()
                guard response.status == .ok else {
                    let bytes = try await response.body.collect(upTo: 64 << 10)
                    let message = (try? JSONDecoder().decode(ProviderErrorBody.self, from: Data(bytes.readableBytesView)))?.error?.message
                    throw ResponderError.provider(status: Int(response.status.code), message: message ?? "no error message")
                }
                var parser = SSELineParser()
                for try await chunk in response.body {
                    lastProgress.touch()
                    for line in parser.feed(chunk) {
                        if try Self.handle(line: line, yield: yield) { return }
                    }
                }
                for line in parser.finish() {
                    if try Self.handle(line: line, yield: yield) { return }
                }
            }
            group.addTask {
                while true {
                    let since = lastProgress.elapsed()
                    if since >= timeout { throw ResponderError.timedOut(seconds: Int(timeout.components.seconds)) }
                    try await Task.sleep(for: min(timeout - since, .milliseconds(250)))
                }
            }
            // The first to end decides: the reader's end (or error), or the watchdog's timeout.
            try await group.next()
            group.cancelAll()
        }
    }

    /// One line of the stream; true at `data: [DONE]`.
    static func handle(line: String, yield: (String) -> Void) throws -> Bool {
        guard line.hasPrefix("data:") else { return false }
        let payload = line.dropFirst(5).trimmingCharacters(in: .whitespaces)
        if payload == "[DONE]" { return true }
        guard !payload.isEmpty else { return false }
        let chunk: StreamChunk
        do {
            chunk = try JSONDecoder().decode(StreamChunk.self, from: Data(payload.utf8))
        } catch {
            throw ResponderError.unreadable("\(error)")
        }
        for choice in chunk.choices {
            if let content = choice.delta?.content, !content.isEmpty { yield(content) }
        }
        return false
    }
}

/// When the provider last showed progress, shared by the reader and its watchdog.
private final class ProgressMark: Sendable {
    private let last = Mutex(ContinuousClock.now)

    func touch() { last.withLock { $0 = .now } }
    func elapsed() -> Duration { last.withLock { ContinuousClock.now - $0 } }
}

/// Splits a byte stream into lines (LF or CRLF), however the bytes are cut into chunks.
struct SSELineParser {
    private var pending: [UInt8] = []

    mutating func feed(_ buffer: ByteBuffer) -> [String] {
        pending.append(contentsOf: buffer.readableBytesView)
        var lines: [String] = []
        while let newline = pending.firstIndex(of: 0x0A) {
            var line = pending[..<newline]
            if line.last == 0x0D { line = line.dropLast() }
            lines.append(String(decoding: line, as: UTF8.self))
            pending.removeSubrange(...newline)
        }
        return lines
    }

    mutating func finish() -> [String] {
        defer { pending.removeAll() }
        return pending.isEmpty ? [] : [String(decoding: pending, as: UTF8.self)]
    }
}

extension String {
    fileprivate func trimmingSuffix(_ suffix: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) : self
    }
}
