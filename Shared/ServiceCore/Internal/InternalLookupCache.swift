import Foundation
import HTTPTypes
import Logging
import Synchronization

/// Answers of another service's internal `GET` routes, reused for `ttl` so a hot path (every chat
/// message, every sign-in) does not cost a call each time. A 404 is not kept: a thing that appears
/// is seen at once. Memory is bounded: past `limit` entries the cache starts over.
package final class InternalLookupCache<Value: Decodable & Sendable>: Sendable {
    private struct Entry {
        var value: Value
        var fetchedAt: ContinuousClock.Instant
    }

    private let client: InternalClient
    private let ttl: Duration
    private let limit: Int
    private let cache = Mutex<[String: Entry]>([:])
    /// The question being asked per path: callers that miss together share it.
    private let inFlight = Mutex<[String: Task<Value?, any Error>]>([:])

    package init(client: InternalClient, ttl: Duration, limit: Int = 10_000) {
        self.client = client
        self.ttl = ttl
        self.limit = limit
    }

    /// The answer of `GET path`; nil when the service answers 404; throws the public error
    /// (503, 504, 502) when it cannot be asked.
    package func value(path: String, logger: Logger) async throws -> Value? {
        let now = ContinuousClock.now
        if let entry = cache.withLock({ $0[path] }), now - entry.fetchedAt < ttl { return entry.value }
        // One question per path at a time. Without it, every request that found the entry expired
        // asked again: at a few hundred chat messages a second, an expiry sent hundreds of calls
        // at once into the client's 16 connections, and those that waited too long became 502s.
        let question = inFlight.withLock { questions in
            if let asked = questions[path] { return asked }
            let asked = Task { try await self.fetch(path: path, logger: logger) }
            questions[path] = asked
            return asked
        }
        return try await question.value
    }

    private func fetch(path: String, logger: Logger) async throws -> Value? {
        defer { inFlight.withLock { _ = $0.removeValue(forKey: path) } }
        let now = ContinuousClock.now
        do {
            let value = try await client.send(.get, path, as: Value.self, logger: logger)
            cache.withLock { cache in
                if cache.count >= limit { cache.removeAll(keepingCapacity: true) }
                cache[path] = Entry(value: value, fetchedAt: now)
            }
            return value
        } catch InternalCallError.rejected(_, 404, _) {
            cache.withLock { _ = $0.removeValue(forKey: path) }
            return nil
        } catch let error as InternalCallError {
            throw error.publicError
        }
    }

    /// The last answer kept for `path`, however old: what a caller may fall back on while the
    /// service cannot be asked.
    package func lastKnown(path: String) -> Value? {
        cache.withLock { $0[path]?.value }
    }

    /// Drops every kept answer `stale` picks: the next question for it asks the service.
    package func forget(where stale: (Value) -> Bool) {
        cache.withLock { cache in cache = cache.filter { !stale($0.value.value) } }
    }
}
