import AsyncAlgorithms
import AsyncHTTPClient
import Hummingbird
import NIOConcurrencyHelpers
import NIOCore
import ServiceCore

/// A client's request body on its way to an upstream.
///
/// Why this exists: Hummingbird hands a handler the connection's own inbound iterator as the
/// request body, and once the response is written it reads whatever is left of that body itself,
/// from the same iterator, to reach the next request. The gateway used to pass the body straight to
/// AsyncHTTPClient, which reads it from a task of its own. When the upstream answered before the
/// whole body had gone through (an early 4xx, or a reset mid-body) the handler returned, the
/// response was written, and Hummingbird began draining while AsyncHTTPClient's task was still
/// suspended in `next()` on that iterator: two concurrent `next()` calls on one
/// `NIOThrowingAsyncSequenceProducer`, which traps and takes the whole process down.
///
/// So every read of the client's body happens in a task the gateway owns, and that task has ended
/// (finished, or been cancelled and awaited) before the response is handed back:
/// - a declared length up to `bufferLimit` is read whole before anything is sent upstream (as
///   nginx does by default), within `timeout`;
/// - a larger declared length, or a chunked body, is relayed chunk by chunk through a rendezvous
///   channel by a pump task; `finish()` cancels the pump and waits for it.
enum ForwardedBody: Sendable {
    case none
    case buffered(ByteBuffer)
    case streamed(BodyRelay, length: Int64?)

    struct Limits: Sendable {
        /// Largest body accepted at all.
        var maxBytes: Int
        /// Largest declared body read whole before forwarding.
        var bufferBytes: Int
        /// Time a client has to send a buffered body.
        var timeout: Duration
    }

    /// Takes the body off the request as `limits` allow; throws 413 or 408 `AppError`s.
    static func read(_ request: Request, limits: Limits) async throws -> ForwardedBody {
        if let declared = request.headers[.contentLength].flatMap(Int.init) {
            guard declared <= limits.maxBytes else { throw AppError.payloadTooLarge(limit: limits.maxBytes) }
            if declared == 0 { return .none }
            if declared <= limits.bufferBytes {
                return .buffered(try await collect(request.body, limit: declared, timeout: limits.timeout))
            }
            return .streamed(BodyRelay(request.body, limit: declared), length: Int64(declared))
        }
        if request.headers[.transferEncoding] != nil {
            return .streamed(BodyRelay(request.body, limit: limits.maxBytes), length: nil)
        }
        return .none
    }

    /// The body as AsyncHTTPClient sends it.
    var outbound: HTTPClientRequest.Body? {
        switch self {
        case .none: nil
        case .buffered(let buffer): .bytes(buffer)
        case .streamed(let relay, let length): .stream(relay.channel, length: length.map { .known($0) } ?? .unknown)
        }
    }

    /// Why the client's side of a relayed body failed, if it did: the request failed because of the
    /// client (it went away, or sent too much), not because of the upstream.
    var clientFailure: AppError? {
        guard case .streamed(let relay, _) = self, let failure = relay.failure else { return nil }
        if let tooLarge = failure as? BodyTooLarge { return .payloadTooLarge(limit: tooLarge.limit) }
        return .badRequest("The request body could not be read to its end", code: "INCOMPLETE_BODY")
    }

    /// Ends any read of the client's body still going on; returns once nothing reads it any more.
    func finish() async {
        if case .streamed(let relay, _) = self { await relay.finish() }
    }

    /// Reads the whole body in a child task; on timeout the read is cancelled and awaited.
    private static func collect(_ body: RequestBody, limit: Int, timeout: Duration) async throws -> ByteBuffer {
        try await withThrowingTaskGroup(of: ByteBuffer?.self) { group in
            group.addTask {
                let buffer = try await body.collect(upTo: limit)
                // The stream also ends early when the client goes away mid-body: never forward a
                // truncated body as if it were whole.
                guard buffer.readableBytes == limit else {
                    throw AppError.badRequest("The request body ended before its Content-Length", code: "INCOMPLETE_BODY")
                }
                return buffer
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let buffer = first else {
                throw AppError(.requestTimeout, code: "REQUEST_TIMEOUT", detail: "The request body did not arrive in time")
            }
            return buffer
        }
    }
}

/// Relays a request body to an upstream through a rendezvous channel, so the client is read only
/// as fast as the upstream takes it and only by the pump task.
final class BodyRelay: Sendable {
    let channel = AsyncThrowingChannel<ByteBuffer, any Error>()
    private let pump: Task<Void, Never>
    private let failureBox = NIOLockedValueBox<(any Error)?>(nil)

    /// The error that stopped the pump before the body's end, if any.
    var failure: (any Error)? { failureBox.withLockedValue { $0 } }

    init(_ body: RequestBody, limit: Int) {
        let channel = self.channel
        let failureBox = self.failureBox
        self.pump = Task {
            do {
                var seen = 0
                for try await chunk in body {
                    seen += chunk.readableBytes
                    guard seen <= limit else { throw BodyTooLarge(limit: limit) }
                    await channel.send(chunk)
                    try Task.checkCancellation()
                }
                channel.finish()
            } catch {
                // A pump stopped by `finish()` failed because of us, not the client.
                if !Task.isCancelled { failureBox.withLockedValue { $0 = error } }
                channel.fail(error)
            }
        }
    }

    /// Cancels the pump if it is still reading and waits until it has stopped.
    func finish() async {
        pump.cancel()
        await pump.value
    }
}

/// Thrown when a streamed body grows past its declared length or the gateway's limit.
struct BodyTooLarge: Error {
    let limit: Int
}
