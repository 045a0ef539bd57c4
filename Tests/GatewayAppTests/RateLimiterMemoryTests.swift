import Foundation
import Testing

@testable import GatewayApp

private let base = 1_800_000_000.0

private func at(_ seconds: Double) -> Date { Date(timeIntervalSince1970: base + seconds) }

@Suite struct RateLimiterMemoryTests {
    @Test func aFloodOfNewKeysDoesNotResetALiveCounter() {
        let limiter = RateLimiter(maxKeys: 64, shardCount: 1)
        for _ in 0..<5 { #expect(limiter.check(key: "auth|victim", limit: 5, now: at(1)).allowed) }
        #expect(limiter.check(key: "auth|victim", limit: 5, now: at(1)).allowed == false)

        for index in 0..<10_000 {
            _ = limiter.check(key: "auth|attacker-\(index)", limit: 5, now: at(2 + Double(index) / 1_000))
            #expect(limiter.keyCount <= 64)
        }

        #expect(limiter.check(key: "auth|victim", limit: 5, now: at(30)).allowed == false)
        // In the next window the victim's 5 still weigh 5 × 59/60, so it stays limited.
        #expect(limiter.check(key: "auth|victim", limit: 5, now: at(61)).allowed == false)
    }

    @Test func keysWithoutRoomShareOneOverflowCounter() {
        let limiter = RateLimiter(maxKeys: 64, shardCount: 1)
        let admitted = (0..<10_000).filter { limiter.check(key: "ip|flood-\($0)", limit: 100, now: at(1)).allowed }.count
        // 64 keys got counters of their own; the other 9,936 shared one counter's 100.
        #expect(admitted == 64 + 100)
        #expect(limiter.keyCount == 64)
    }

    @Test func memoryStaysBoundedAcrossShards() {
        for maxKeys in [1_024, 1_000, 10] {
            let limiter = RateLimiter(maxKeys: maxKeys)
            for index in 0..<50_000 {
                _ = limiter.check(key: "ip|10.\(index >> 16).\((index >> 8) & 255).\(index & 255)", limit: 100, now: at(1))
            }
            #expect(limiter.keyCount <= maxKeys)
            #expect(limiter.keyCount >= maxKeys * 9 / 10, "the shards should fill nearly evenly")
        }
    }

    @Test func expiredKeysAreReclaimedAndOnlyThen() {
        let limiter = RateLimiter(maxKeys: 64, shardCount: 1)
        for index in 0..<64 { _ = limiter.check(key: "old-\(index)", limit: 10, now: at(1)) }

        // Until 120 s the old keys' counts still weigh in as the previous window: no room, so newcomers share overflow.
        #expect(limiter.check(key: "new-a", limit: 2, now: at(119.999)).remaining == 1)
        #expect(limiter.check(key: "new-b", limit: 2, now: at(119.999)).remaining == 0)
        #expect(limiter.keyCount == 64)

        // From 120 s they can no longer affect a decision, and each newcomer gets a counter of its own.
        let fresh = (0..<64).map { limiter.check(key: "fresh-\($0)", limit: 1, now: at(120)) }
        #expect(fresh.allSatisfy { $0.allowed && $0.remaining == 0 })
        #expect(limiter.keyCount == 64)
        // The table is full of live keys again, so a returning old key is counted in the overflow counter, where the
        // 2 admitted at 119.999 s still weigh fully.
        #expect(limiter.check(key: "old-0", limit: 10, now: at(120)).remaining == 7)
    }

    @Test func aKeyThatStaysActiveIsNeverReclaimed() {
        let limiter = RateLimiter(maxKeys: 16, shardCount: 1)
        for window in 0..<10 {
            let start = Double(window * 60)
            for _ in 0..<3 { _ = limiter.check(key: "steady", limit: 3, now: at(start + 1)) }
            for index in 0..<100 { _ = limiter.check(key: "churn-\(window)-\(index)", limit: 3, now: at(start + 2)) }
            #expect(limiter.check(key: "steady", limit: 3, now: at(start + 3)).allowed == false, "window \(window)")
        }
    }

    /// The expiry queue holds an entry per key per window it was active in, and stale entries are popped as they age,
    /// so it stays within a small multiple of the number of active keys, whether the table is full (more keys than
    /// room) or never fills (a few keys active for many windows).
    @Test(arguments: [(capacity: 100, keys: 400), (capacity: 1_000, keys: 50)])
    func theExpiryQueueStaysProportionalToTheActiveKeys(capacity: Int, keys: Int) {
        var shard = RateLimiterShard(capacity: capacity, windowLength: 60)
        var random = SplitMix64(seed: 42)
        var longestQueue = 0
        var now = Int(base) * 1_000
        for _ in 0..<200_000 {
            now += Int(random.next() % 200)
            _ = shard.check(key: "k\(random.next() % UInt64(keys))", limit: 50, nowMilliseconds: now)
            #expect(shard.counters.count <= capacity)
            longestQueue = max(longestQueue, shard.expiry.count)
        }
        #expect(longestQueue <= 4 * min(capacity, keys), "longest queue: \(longestQueue)")
    }
}
