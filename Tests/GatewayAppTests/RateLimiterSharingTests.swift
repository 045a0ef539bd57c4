import Foundation
import Testing

@testable import GatewayApp

private let base = 1_800_000_000.0
private let window = Int(base)

private func at(_ seconds: Double) -> Date { Date(timeIntervalSince1970: base + seconds) }

/// The in-memory stand-in for the shared store: sums every replica's deltas per key and window.
private struct SharedStore {
    var totals: [String: WindowCount] = [:]

    mutating func add(_ deltas: [WindowCount]) {
        for delta in deltas {
            totals["\(delta.key)@\(delta.windowStart)", default: WindowCount(key: delta.key, windowStart: delta.windowStart, count: 0)]
                .count += delta.count
        }
    }

    var all: [WindowCount] { Array(totals.values) }
}

@Suite struct RateLimiterSharingTests {
    @Test func replicasShareOneLimit() {
        let replicaA = RateLimiter(maxKeys: 1_000)
        let replicaB = RateLimiter(maxKeys: 1_000)
        for _ in 0..<6 { #expect(replicaA.check(key: "tenant|t1", limit: 10, now: at(5)).allowed) }
        for _ in 0..<4 { #expect(replicaB.check(key: "tenant|t1", limit: 10, now: at(6)).allowed) }

        var store = SharedStore()
        store.add(replicaA.drainLocalDeltas())
        store.add(replicaB.drainLocalDeltas())
        #expect(store.all == [WindowCount(key: "tenant|t1", windowStart: window, count: 10)])
        replicaA.absorb(sharedTotals: store.all, now: at(7))
        replicaB.absorb(sharedTotals: store.all, now: at(7))

        #expect(replicaA.check(key: "tenant|t1", limit: 10, now: at(8)).allowed == false)
        #expect(replicaB.check(key: "tenant|t1", limit: 10, now: at(8)).allowed == false)
    }

    @Test func eachAdmissionIsDrainedOnce() {
        let limiter = RateLimiter(maxKeys: 1_000)
        for _ in 0..<3 { _ = limiter.check(key: "a", limit: 10, now: at(5)) }
        _ = limiter.check(key: "b", limit: 10, now: at(5))
        let first = limiter.drainLocalDeltas().sorted { $0.key < $1.key }
        #expect(first == [WindowCount(key: "a", windowStart: window, count: 3), WindowCount(key: "b", windowStart: window, count: 1)])
        #expect(limiter.drainLocalDeltas().isEmpty)

        _ = limiter.check(key: "a", limit: 10, now: at(6))
        #expect(limiter.drainLocalDeltas() == [WindowCount(key: "a", windowStart: window, count: 1)])
    }

    @Test func refusedRequestsProduceNoDeltas() {
        let limiter = RateLimiter(maxKeys: 1_000)
        for _ in 0..<5 { _ = limiter.check(key: "a", limit: 2, now: at(5)) }
        #expect(limiter.drainLocalDeltas() == [WindowCount(key: "a", windowStart: window, count: 2)])
    }

    @Test func undrainedDeltasSurviveAWindowChange() {
        let limiter = RateLimiter(maxKeys: 1_000)
        for _ in 0..<2 { _ = limiter.check(key: "a", limit: 10, now: at(59)) }
        _ = limiter.check(key: "a", limit: 10, now: at(61))
        let deltas = limiter.drainLocalDeltas().sorted { $0.windowStart < $1.windowStart }
        #expect(deltas == [WindowCount(key: "a", windowStart: window, count: 2), WindowCount(key: "a", windowStart: window + 60, count: 1)])
    }

    @Test func absorbingIsIdempotentAndKeepsUndrainedLocalCounts() {
        let limiter = RateLimiter(maxKeys: 1_000)
        for _ in 0..<3 { _ = limiter.check(key: "a", limit: 20, now: at(5)) }
        // The store has 5 from other replicas; this replica's 3 are not drained yet, so they are added on top.
        let totals = [WindowCount(key: "a", windowStart: window, count: 5)]
        limiter.absorb(sharedTotals: totals, now: at(6))
        limiter.absorb(sharedTotals: totals, now: at(6))
        #expect(limiter.check(key: "a", limit: 20, now: at(7)).remaining == 20 - 8 - 1)
        // A stale, smaller total never lowers the count.
        limiter.absorb(sharedTotals: [WindowCount(key: "a", windowStart: window, count: 1)], now: at(8))
        #expect(limiter.check(key: "a", limit: 20, now: at(8)).remaining == 20 - 9 - 1)
    }

    @Test func drainedCountsAreNotCountedTwiceWhenTheTotalComesBack() {
        let limiter = RateLimiter(maxKeys: 1_000)
        for _ in 0..<3 { _ = limiter.check(key: "a", limit: 20, now: at(5)) }
        var store = SharedStore()
        store.add(limiter.drainLocalDeltas())
        store.add([WindowCount(key: "a", windowStart: window, count: 4)])
        limiter.absorb(sharedTotals: store.all, now: at(6))
        #expect(limiter.check(key: "a", limit: 20, now: at(7)).remaining == 20 - 7 - 1)
    }

    @Test func aPreviousWindowTotalIsWeighted() {
        let limiter = RateLimiter(maxKeys: 1_000)
        // 10 admitted elsewhere in the previous window, learnt half-way through this one: they weigh 5.
        limiter.absorb(sharedTotals: [WindowCount(key: "a", windowStart: window, count: 10)], now: at(90))
        #expect(limiter.keyCount == 1)
        #expect(limiter.check(key: "a", limit: 10, now: at(90)).remaining == 10 - 5 - 1)
    }

    @Test func totalsThatCannotMatterAreIgnored() {
        let limiter = RateLimiter(maxKeys: 1_000)
        limiter.absorb(
            sharedTotals: [
                WindowCount(key: "old", windowStart: window - 60, count: 10),
                WindowCount(key: "future", windowStart: window + 120, count: 10),
                WindowCount(key: "empty", windowStart: window, count: 0),
            ],
            now: at(90)
        )
        #expect(limiter.keyCount == 0)
    }

    @Test func absorbingRespectsTheMemoryBound() {
        let limiter = RateLimiter(maxKeys: 8, shardCount: 1)
        let totals = (0..<100).map { WindowCount(key: "remote-\($0)", windowStart: window, count: 1) }
        limiter.absorb(sharedTotals: totals, now: at(5))
        #expect(limiter.keyCount == 8)
    }

    @Test func absorbedCountsAreCapped() {
        let limiter = RateLimiter(maxKeys: 8)
        limiter.absorb(sharedTotals: [WindowCount(key: "a", windowStart: window, count: .max)], now: at(5))
        let decision = limiter.check(key: "a", limit: .max, now: at(5))
        #expect(decision.allowed == false)
        #expect(decision.remaining == 0)
    }
}
