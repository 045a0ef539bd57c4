import Foundation
import Synchronization

/// Per-key request limits over a sliding window, in bounded memory, checked synchronously on every request.
///
/// Each key has a sliding-window counter over windows aligned to multiples of `windowSeconds` in Unix time (see
/// `SlidingWindowCounter`), so a client cannot get twice its limit by straddling a window boundary. At most `maxKeys`
/// keys are remembered, spread over shards with a lock each so concurrent requests rarely wait on the same lock; a
/// full shard never resets a live counter (see `RateLimiterShard`).
///
/// Sharing limits across replicas: the aligned windows give every replica the same `(key, windowStart)` names for
/// counts. A synchroniser periodically calls `drainLocalDeltas()` and adds what it gets to a shared store (for example
/// PostgreSQL, `count = count + delta` keyed by key and window start), then reads the store's totals back and passes
/// them to `absorb(sharedTotals:now:)`. Both calls are off the request path and take each shard's lock briefly.
final class RateLimiter: Sendable {
    /// A lock per shard; a class because `Mutex` cannot be copied into an array.
    private final class LockedShard: Sendable {
        let state: Mutex<RateLimiterShard>

        init(_ shard: RateLimiterShard) {
            self.state = Mutex(shard)
        }
    }

    private let shards: [LockedShard]

    /// `maxKeys` is split evenly over the shards (at most `maxKeys` of them), so the total never exceeds it.
    init(maxKeys: Int, windowSeconds: Int = 60, shardCount: Int = 16) {
        precondition(maxKeys > 0 && shardCount > 0, "RateLimiter needs room for at least one key in at least one shard")
        precondition(
            (1...SlidingWindowCounter.maxWindowSeconds).contains(windowSeconds),
            "RateLimiter windows must be 1 s to \(SlidingWindowCounter.maxWindowSeconds) s long"
        )
        let count = min(shardCount, maxKeys)
        let shard = RateLimiterShard(capacity: maxKeys / count, windowLength: windowSeconds)
        self.shards = (0..<count).map { _ in LockedShard(shard) }
    }

    /// Counts one request for `key` if it is within `limit` per sliding window; refused requests are not counted.
    func check(key: String, limit: Int, now: Date = Date()) -> RateLimitDecision {
        let nowMilliseconds = SlidingWindowCounter.milliseconds(now)
        return shard(for: key).state.withLock { $0.check(key: key, limit: limit, nowMilliseconds: nowMilliseconds) }
    }

    /// Keys currently remembered, not counting the overflow counters (for tests and metrics).
    var keyCount: Int { shards.reduce(0) { $0 + $1.state.withLock { $0.counters.count } } }

    /// The hook for shared limits: admissions counted here since the last call, one entry per key and window, for a
    /// synchroniser to add to the shared store. Each admission is handed over exactly once.
    func drainLocalDeltas() -> [WindowCount] {
        shards.flatMap { shard in shard.state.withLock { $0.drainUnsynced() } }
    }

    /// The other half of the hook: totals read from the shared store, each the sum of all replicas' drained deltas for
    /// one key and window. Absorbing is idempotent and never lowers a count; totals for windows that can no longer
    /// affect a decision, or that have not begun by `now`, are ignored.
    func absorb(sharedTotals: [WindowCount], now: Date = Date()) {
        let nowMilliseconds = SlidingWindowCounter.milliseconds(now)
        for total in sharedTotals {
            shard(for: total.key).state.withLock { $0.absorb(total, nowMilliseconds: nowMilliseconds) }
        }
    }

    private func shard(for key: String) -> LockedShard {
        shards[Int(UInt(bitPattern: key.hashValue) % UInt(shards.count))]
    }
}
