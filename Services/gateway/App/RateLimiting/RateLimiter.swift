import Foundation
import Synchronization

/// What the limiter decided, with the numbers for the `X-RateLimit-*` headers.
struct RateLimitDecision: Equatable {
    var allowed: Bool
    var limit: Int
    var remaining: Int
    /// Unix time (seconds) at which the current window ends.
    var resetAt: Int
    /// Seconds until a refused caller may try again.
    var retryAfter: Int
}

/// Fixed-window request counters, one window per key starting at its first request.
///
/// Memory is bounded: at most `maxKeys` keys are remembered; when full, the keys whose windows
/// started longest ago are forgotten first (they are the closest to resetting anyway). Keys are
/// spread over shards so concurrent requests rarely wait on the same lock.
final class RateLimiter: Sendable {
    private struct Window {
        var start: Int
        var count: Int
    }

    private struct Shard {
        var windows: [String: Window] = [:]
        /// Keys in the order their windows started; entries whose window restarted since are stale.
        var order: [(key: String, start: Int)] = []
        var head = 0

        mutating func evictOldest() {
            while head < order.count {
                let candidate = order[head]
                head += 1
                if windows[candidate.key]?.start == candidate.start {
                    windows.removeValue(forKey: candidate.key)
                    break
                }
            }
            compactIfNeeded(force: false)
        }

        mutating func compactIfNeeded(force: Bool) {
            // Keep `order` proportional to the live keys: drop consumed and stale entries.
            guard force || head > 1024 && head * 2 > order.count else { return }
            order = order[head...].filter { windows[$0.key]?.start == $0.start }
            head = 0
        }
    }

    /// A lock per shard; a class because `Mutex` cannot be copied into an array.
    private final class LockedShard: Sendable {
        let state = Mutex(Shard())
    }

    private let shards: [LockedShard]
    private let keysPerShard: Int
    private let windowSeconds: Int

    init(maxKeys: Int, windowSeconds: Int = 60, shardCount: Int = 16) {
        self.shards = (0..<shardCount).map { _ in LockedShard() }
        self.keysPerShard = max(1, maxKeys / shardCount)
        self.windowSeconds = windowSeconds
    }

    /// Counts one request for `key` and says whether it is within `limit` per window.
    func check(key: String, limit: Int, now: Date = Date()) -> RateLimitDecision {
        let second = Int(now.timeIntervalSince1970)
        let index = Int(UInt(bitPattern: key.hashValue) % UInt(shards.count))
        return shards[index].state.withLock { shard in
            var window = shard.windows[key] ?? Window(start: second, count: 0)
            if second - window.start >= windowSeconds || shard.windows[key] == nil {
                if shard.windows[key] == nil && shard.windows.count >= keysPerShard { shard.evictOldest() }
                window = Window(start: second, count: 0)
                shard.order.append((key, second))
                if shard.order.count > keysPerShard * 4 { shard.compactIfNeeded(force: true) }
            }
            window.count += 1
            shard.windows[key] = window
            let resetAt = window.start + windowSeconds
            return RateLimitDecision(
                allowed: window.count <= limit,
                limit: limit,
                remaining: max(0, limit - window.count),
                resetAt: resetAt,
                retryAfter: max(1, resetAt - second)
            )
        }
    }

    /// Keys currently remembered (for tests and metrics).
    var keyCount: Int { shards.reduce(0) { $0 + $1.state.withLock { $0.windows.count } } }
}
