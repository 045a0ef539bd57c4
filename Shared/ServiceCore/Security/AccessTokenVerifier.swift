import AsyncHTTPClient
import Foundation
import JWTKit
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Synchronization

/// Where the verifier gets the public keys: auth's JWKS over HTTP, or auth's own key store.
package protocol JWKSSource: Sendable {
    func fetchJWKS() async throws -> JWKS
}

/// Fetches a JWKS document over HTTP.
package struct HTTPJWKSSource: JWKSSource {
    let url: String
    let client: HTTPClient

    package init(url: String, client: HTTPClient) {
        self.url = url
        self.client = client
    }

    package func fetchJWKS() async throws -> JWKS {
        let response = try await client.execute(HTTPClientRequest(url: url), timeout: .seconds(5))
        guard response.status == .ok else { throw AppError.unavailable("JWKS answered \(response.status.code)") }
        let body = try await response.body.collect(upTo: 1 << 20)
        return try JSONDecoder().decode(JWKS.self, from: Data(body.readableBytesView))
    }
}

/// Verifies access tokens against a JWKS: ES256 only, keys cached, refetched when an unknown
/// `kid` shows up but at most once per `minimumRefreshInterval`, so garbage tokens cannot
/// turn into a flood of JWKS requests. Verified tokens are cached until they expire.
///
/// Run as a service, it also refetches the set every `refreshInterval`: auth publishes a new key
/// well before it signs with it (`SIGNING_KEY_ACTIVATION_DELAY_SECONDS`), so a polling verifier
/// knows the key before the first token signed with it arrives, and drops keys auth retired.
package final class AccessTokenVerifier: Service, Sendable {
    private struct State {
        var keys = JWTKeyCollection()
        var knownKeyIDs: Set<String> = []
        var lastRefresh: ContinuousClock.Instant?
        /// The last fetch failed: an unknown `kid` may be auth being down, not a forged token.
        var lastRefreshFailed = false
        var refresh: Task<Void, any Error>?
        var verified: [VerifiedToken: AccessTokenClaims] = [:]
    }

    private let source: any JWKSSource
    private let minimumRefreshInterval: Duration
    private let refreshInterval: Duration
    private let cacheLimit: Int
    private let logger: Logger
    private let state = Mutex(State())

    package init(
        source: any JWKSSource,
        minimumRefreshInterval: Duration = .seconds(5),
        refreshInterval: Duration = .seconds(AccessTokenVerifier.defaultRefreshSeconds),
        cacheLimit: Int = 10_000,
        logger: Logger
    ) {
        self.source = source
        self.minimumRefreshInterval = minimumRefreshInterval
        self.refreshInterval = refreshInterval
        self.cacheLimit = cacheLimit
        self.logger = logger
    }

    /// The claims of a token verified before and not yet expired, without waiting: the gateway's
    /// data plane asks this on its event loop and only falls back to `verify` when it is nil.
    package func cachedClaims(_ token: String) -> AccessTokenClaims? {
        guard let cached = state.withLock({ $0.verified[VerifiedToken(token)] }), cached.exp.value > Date() else { return nil }
        return cached
    }

    /// Returns the token's claims, or throws a 401 `AppError` saying why it was refused.
    package func verify(_ token: String) async throws -> AccessTokenClaims {
        let key = VerifiedToken(token)
        if let cached = state.withLock({ $0.verified[key] }) {
            if cached.exp.value > Date() { return cached }
            _ = state.withLock { $0.verified.removeValue(forKey: key) }
            throw AppError.unauthorized("Token expired", code: "TOKEN_EXPIRED")
        }
        let header = try Self.header(of: token)
        var (keys, known) = state.withLock { ($0.keys, $0.knownKeyIDs.contains(header.kid)) }
        if !known {
            try? await refreshKeys()
            let failed: Bool
            (keys, known, failed) = state.withLock { ($0.keys, $0.knownKeyIDs.contains(header.kid), $0.lastRefreshFailed) }
            guard known else {
                if failed { throw AppError.unavailable("Access tokens cannot be checked right now; try again shortly", code: "JWKS_UNAVAILABLE") }
                throw AppError.unauthorized("Token signed with an unknown key", code: "INVALID_TOKEN")
            }
        }
        let claims: AccessTokenClaims
        do {
            claims = try await keys.verify(token, as: AccessTokenClaims.self)
        } catch let error as JWTError where error.errorType == .claimVerificationFailure {
            if error.failedClaim is ExpirationClaim {
                throw AppError.unauthorized("Token expired", code: "TOKEN_EXPIRED")
            }
            throw AppError.unauthorized("Invalid token", code: "INVALID_TOKEN")
        } catch {
            throw AppError.unauthorized("Invalid token", code: "INVALID_TOKEN")
        }
        state.withLock { state in
            if state.verified.count >= cacheLimit {
                // Drop expired entries first; if that is not enough, start over (bounded memory).
                let now = Date()
                state.verified = state.verified.filter { $0.value.exp.value > now }
                if state.verified.count >= cacheLimit { state.verified.removeAll(keepingCapacity: true) }
            }
            state.verified[key] = claims
        }
        return claims
    }

    /// `JWKS_REFRESH_SECONDS`' default: well inside auth's default activation delay (180 s).
    package static let defaultRefreshSeconds = 60

    /// Refetches the JWKS every `refreshInterval` until shutdown. The first fetch waits for the
    /// first token or the first interval, whichever comes first: at start auth may not be up yet.
    package func run() async throws {
        await repeatUntilShutdown(every: refreshInterval) {
            // A failure is logged in `loadKeys` and leaves the keys as they were.
            try? await refresh(throttled: false)
        }
    }

    /// Refetches the JWKS unless it was fetched less than `minimumRefreshInterval` ago;
    /// concurrent callers share one fetch.
    package func refreshKeys() async throws {
        try await refresh(throttled: true)
    }

    /// The periodic poll is not throttled and does not count as a refresh for the throttle: an
    /// unknown `kid` right after a poll may still fetch once.
    private func refresh(throttled: Bool) async throws {
        let task: Task<Void, any Error>? = state.withLock { state in
            if let running = state.refresh { return running }
            if throttled {
                if let last = state.lastRefresh, ContinuousClock.now - last < minimumRefreshInterval { return nil }
                state.lastRefresh = .now
            }
            let task = Task { try await self.loadKeys() }
            state.refresh = task
            return task
        }
        guard let task else { return }
        defer { state.withLock { $0.refresh = nil } }
        try await task.value
    }

    private func loadKeys() async throws {
        do {
            let jwks = try await source.fetchJWKS()
            let collection = JWTKeyCollection()
            var ids: Set<String> = []
            for key in jwks.keys {
                // Only P-256 EC keys for ES256; anything else in the set is ignored.
                guard key.keyType == .ecdsa, key.curve?.rawValue == "P-256", let kid = key.keyIdentifier else { continue }
                var key = key
                key.algorithm = .es256
                try await collection.add(jwk: key, isDefault: false)
                ids.insert(kid.string)
            }
            // auth always publishes its signing key: an empty set is a broken answer, not a reason
            // to refuse every token.
            guard !ids.isEmpty else { throw AppError.unavailable("JWKS has no usable key") }
            state.withLock { state in
                state.keys = collection
                state.knownKeyIDs = ids
                state.lastRefreshFailed = false
            }
            logger.debug("loaded JWKS", metadata: ["kids": "\(ids.sorted())"])
        } catch {
            state.withLock { $0.lastRefreshFailed = true }
            logger.warning("could not load JWKS", metadata: ["error": "\(error)"])
            throw error
        }
    }

    struct Header: Decodable {
        var alg: String
        var kid: String
    }

    /// Checks the header before any key is touched: ES256 with a `kid`, nothing else.
    static func header(of token: String) throws -> Header {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[2].isEmpty, let data = Data(base64URLEncoded: parts[0]),
            let header = try? JSONDecoder().decode(Header.self, from: data)
        else {
            throw AppError.unauthorized("Malformed token", code: "INVALID_TOKEN")
        }
        guard header.alg == "ES256" else {
            throw AppError.unauthorized("Token algorithm not allowed", code: "INVALID_TOKEN")
        }
        return header
    }
}

extension Settings {
    /// `JWKS_REFRESH_SECONDS`: how often a verifier refetches auth's JWKS. Must stay well below
    /// auth's `SIGNING_KEY_ACTIVATION_DELAY_SECONDS`, so a new key is known before it signs.
    package func jwksRefreshSeconds() throws -> Int {
        try int("JWKS_REFRESH_SECONDS", default: AccessTokenVerifier.defaultRefreshSeconds, range: 1...3_600)
    }
}

extension Data {
    /// base64url without padding, as used in JWTs and opaque ids.
    package func base64URLEncodedString() -> String {
        base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Decodes base64url without padding, as used in JWTs.
    package init?(base64URLEncoded input: some StringProtocol) {
        var base64 = input.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        let remainder = base64.count % 4
        if remainder == 1 { return nil }
        if remainder > 0 { base64 += String(repeating: "=", count: 4 - remainder) }
        self.init(base64Encoded: base64)
    }
}

/// A verified token as the key of the verifier's cache, hashed by its length and its last 32 bytes
/// instead of all ~700: the end of a token is its signature, which nobody without the signing key
/// can choose, so it spreads keys as well as the whole token at a fraction of the cost (the gateway
/// looks a token up on every request). Equality still compares whole tokens, and only verified
/// tokens are stored, so a forged token that copies a real one's tail only misses.
struct VerifiedToken: Hashable {
    let token: String

    init(_ token: String) {
        self.token = token
    }

    func hash(into hasher: inout Hasher) {
        let hashed: Void? = token.utf8.withContiguousStorageIfAvailable { bytes in
            hasher.combine(bytes.count)
            hasher.combine(bytes: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: bytes.suffix(32))))
        }
        if hashed == nil { hasher.combine(token) }
    }
}
