import Crypto
import Foundation
import HTTPTypes
import InternalAPI
import ServiceCore
import Synchronization

/// The access tokens auth has given the gateway for API keys, so services only ever see access
/// tokens and auth is asked about a key once every few minutes, not once per request.
///
/// A token is used for most of its short life (auth mints them for five minutes at most); it names
/// the key as its session, so revoking the key voids it through the revocation feed like a logout,
/// and admission then asks auth again (which refuses the key). Refusals are kept briefly, so a
/// made-up key repeated cannot flood auth. Keys are held by their SHA-256, never as sent.
final class APIKeyTokens: Sendable {
    typealias Fingerprint = SHA256Digest

    /// An access token for a key, verified like any other.
    struct Grant: Sendable {
        var token: String
        var claims: AccessTokenClaims
    }

    enum Answer: Sendable {
        case granted(Grant)
        case refused(AppError)
    }

    private struct State {
        var answers: [Fingerprint: (answer: Answer, until: ContinuousClock.Instant)] = [:]
        /// One call to auth per key at a time: whoever asks meanwhile waits for the same answer.
        var asking: [Fingerprint: Task<Answer, Never>] = [:]
    }

    private let exchange: @Sendable (String) async throws -> APIKeyExchangeReply
    private let verifier: AccessTokenVerifier
    private let capacity: Int
    private let refusalLife: Duration
    private let state = Mutex(State())

    /// - Parameters:
    ///   - exchange: asks auth for a token for the key (`APIKeyExchangeClient`).
    ///   - capacity: keys remembered at most; past it, expired answers go first, then everything.
    ///   - refusalLife: how long a refused key is answered from memory.
    init(
        exchange: @escaping @Sendable (String) async throws -> APIKeyExchangeReply, verifier: AccessTokenVerifier, capacity: Int = 10_000,
        refusalLife: Duration = .seconds(10)
    ) {
        self.exchange = exchange
        self.verifier = verifier
        self.capacity = capacity
        self.refusalLife = refusalLife
    }

    static func fingerprint(_ key: String) -> Fingerprint { SHA256.hash(data: Data(key.utf8)) }

    /// The answer for a key asked about recently, without waiting (the data plane asks this on its
    /// event loop); nil when auth must be asked.
    func cached(_ key: Fingerprint) -> Answer? {
        state.withLock { state in
            guard let hit = state.answers[key] else { return nil }
            guard hit.until > .now else {
                state.answers[key] = nil
                return nil
            }
            return hit.answer
        }
    }

    /// Forgets the key's token when it is still `token` (voided since: a newer one is wanted).
    func forget(_ key: Fingerprint, token: String) {
        state.withLock { state in
            if case .granted(let grant) = state.answers[key]?.answer, grant.token == token { state.answers[key] = nil }
        }
    }

    /// Asks auth about the key, or waits for the call already asking.
    func answer(for key: String, fingerprint: Fingerprint) async -> Answer {
        let call = state.withLock { state in
            if let asking = state.asking[fingerprint] { return asking }
            let call = Task { await self.ask(key, fingerprint) }
            state.asking[fingerprint] = call
            return call
        }
        return await call.value
    }

    var count: Int { state.withLock { $0.answers.count } }

    private func ask(_ key: String, _ fingerprint: Fingerprint) async -> Answer {
        let (answer, life) = await fetch(key)
        state.withLock { state in
            state.asking[fingerprint] = nil
            guard let life else { return }
            let now = ContinuousClock.now
            if state.answers.count >= capacity {
                state.answers = state.answers.filter { $0.value.until > now }
                if state.answers.count >= capacity { state.answers.removeAll(keepingCapacity: true) }
            }
            state.answers[fingerprint] = (answer, now + life)
        }
        return answer
    }

    /// Auth's answer and how long to keep it (nil: not at all, auth could not say).
    private func fetch(_ key: String) async -> (Answer, Duration?) {
        let reply: APIKeyExchangeReply
        do {
            reply = try await exchange(key)
        } catch let error as InternalCallError {
            switch error {
            case .rejected(_, 401, let body) where body?.code != "CALLER_NOT_ALLOWED":
                let refusal = AppError.unauthorized(body?.detail ?? "Invalid API key", code: body?.code ?? Self.invalid.code)
                return (.refused(refusal), refusalLife)
            case .timedOut:
                return (.refused(error.publicError), nil)
            default:
                return (.refused(InternalCallError.unavailable(service: "auth", reason: error.description).publicError), nil)
            }
        } catch {
            return (.refused(InternalCallError.unavailable(service: "auth", reason: "\(error)").publicError), nil)
        }
        do {
            let claims = try await verifier.verify(reply.accessToken)
            // Most of the token's life: what the service is sent has a fifth of it left at least.
            return (.granted(Grant(token: reply.accessToken, claims: claims)), .milliseconds(reply.expiresIn * 800))
        } catch let error as AppError where error.status == .serviceUnavailable {
            return (.refused(error), nil)
        } catch {
            return (.refused(InternalCallError.unavailable(service: "auth", reason: "its token was refused: \(error)").publicError), nil)
        }
    }

    /// Not shaped like a key: refused before auth is asked.
    static let invalid = AppError.unauthorized("Invalid API key", code: "INVALID_API_KEY")
}
