import Foundation
import Testing

@testable import GatewayApp

/// A Unix time that is a multiple of 60, so test times read as offsets into an aligned window.
private let base = 1_800_000_000.0

private func at(_ seconds: Double) -> Date { Date(timeIntervalSince1970: base + seconds) }

@Suite struct RateLimiterTests {
    @Test func countsPerKeyWithinAWindow() {
        let limiter = RateLimiter(maxKeys: 1_000)
        let decisions = (0..<4).map { _ in limiter.check(key: "a", limit: 3, now: at(10)) }
        #expect(decisions.map(\.allowed) == [true, true, true, false])
        #expect(decisions.map(\.remaining) == [2, 1, 0, 0])
        #expect(decisions.allSatisfy { $0.limit == 3 && $0.resetAt == Int(base) + 60 && $0.policyWindowSeconds == 60 })
        // Full until the next window, then 3 × (60 − e)/60 + 1 ≤ 3 needs e ≥ 20 s: 50 s + 20 s from now.
        #expect(decisions[3].retryAfter == 70)
        #expect(limiter.check(key: "a", limit: 3, now: at(79.999)).allowed == false)
        #expect(limiter.check(key: "a", limit: 3, now: at(80)).allowed)
        #expect(limiter.check(key: "b", limit: 3, now: at(10)).remaining == 2)
    }

    @Test func windowsAreAlignedToUnixTime() {
        let limiter = RateLimiter(maxKeys: 1_000, windowSeconds: 60)
        #expect(limiter.check(key: "a", limit: 5, now: at(59.999)).resetAt == Int(base) + 60)
        #expect(limiter.check(key: "a", limit: 5, now: at(60)).resetAt == Int(base) + 120)
        let unaligned = Date(timeIntervalSince1970: 1_000_000)
        #expect(limiter.check(key: "b", limit: 5, now: unaligned).resetAt == 1_000_020)
        let hourly = RateLimiter(maxKeys: 1_000, windowSeconds: 3_600)
        #expect(hourly.check(key: "a", limit: 5, now: at(4_000)).resetAt == Int(base) + 7_200)
    }

    @Test func straddlingABoundaryDoesNotDoubleTheLimit() {
        let limiter = RateLimiter(maxKeys: 1_000)
        let before = (0..<10).filter { _ in limiter.check(key: "k", limit: 10, now: at(59.999)).allowed }.count
        let after = (0..<10).filter { _ in limiter.check(key: "k", limit: 10, now: at(60.001)).allowed }.count
        #expect(before == 10)
        #expect(after == 0)
        // The previous window's 10 decay linearly, so hammering through half the new window earns 5 more, not 10.
        var hammered = 0
        for tenth in 601...900 where limiter.check(key: "k", limit: 10, now: at(Double(tenth) / 10)).allowed { hammered += 1 }
        #expect(hammered == 5)
    }

    @Test func refusedRequestsAreNotCounted() {
        let limiter = RateLimiter(maxKeys: 1_000)
        for _ in 0..<3 { #expect(limiter.check(key: "k", limit: 3, now: at(1)).allowed) }
        for second in 2..<60 { #expect(limiter.check(key: "k", limit: 3, now: at(Double(second))).allowed == false) }
        // Half-way through the next window the 3 admitted weigh 1.5, leaving room for one; the 58 refusals weigh nothing.
        let next = limiter.check(key: "k", limit: 3, now: at(90))
        #expect(next.allowed)
        #expect(next.remaining == 0)
        #expect(limiter.check(key: "k", limit: 3, now: at(90)).allowed == false)
    }

    @Test func aHammeringClientGetsTheLimitPerWindowInTheLongRun() {
        let limiter = RateLimiter(maxKeys: 1_000)
        var admittedPerWindow = [Int](repeating: 0, count: 10)
        for quarter in 0..<(600 * 4) where limiter.check(key: "k", limit: 30, now: at(Double(quarter) / 4)).allowed {
            admittedPerWindow[quarter / 240] += 1
        }
        #expect(admittedPerWindow[0] == 30)
        #expect(admittedPerWindow.dropFirst().allSatisfy { (29...31).contains($0) }, "\(admittedPerWindow)")
        #expect((290...310).contains(admittedPerWindow.reduce(0, +)))
    }

    @Test func aClockSteppingBackDoesNotResetACounter() {
        let limiter = RateLimiter(maxKeys: 1_000)
        for _ in 0..<3 { _ = limiter.check(key: "k", limit: 3, now: at(70)) }
        let stepBack = limiter.check(key: "k", limit: 3, now: at(50))
        #expect(stepBack.allowed == false)
        #expect(stepBack.resetAt == Int(base) + 120)
    }

    @Test func aZeroLimitRefusesEverything() {
        let limiter = RateLimiter(maxKeys: 1_000)
        let decision = limiter.check(key: "k", limit: 0, now: at(15))
        #expect(decision.allowed == false)
        #expect(decision.remaining == 0)
        #expect(decision.retryAfter == 45)
        #expect(limiter.check(key: "k", limit: 0, now: at(200)).allowed == false)
    }

    @Test func concurrentChecksAdmitExactlyTheLimit() async {
        let limiter = RateLimiter(maxKeys: 1_000, shardCount: 4)
        let admitted = await withTaskGroup(of: Int.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    (0..<500).filter { _ in limiter.check(key: "shared", limit: 1_000, now: at(5)).allowed }.count
                }
            }
            return await group.reduce(0, +)
        }
        #expect(admitted == 1_000)
    }

    /// Random traffic against one counter: after every decision, `remaining` further requests at the same instant are
    /// admitted and the next is not, and a request `retryAfter` seconds later is admitted but one a second earlier is
    /// not.
    @Test(arguments: [1, 2, 3, 7, 10, 100])
    func remainingAndRetryAfterAreExact(limit: Int) {
        var random = SplitMix64(seed: UInt64(limit))
        var counter = SlidingWindowCounter(windowStart: 0)
        var now = Int(base) * 1_000
        for _ in 0..<2_000 {
            now += Int(random.next() % 4_000)
            let decision = counter.admit(limit: limit, nowMilliseconds: now, length: 60)

            var sameInstant = counter
            for _ in 0..<decision.remaining {
                #expect(sameInstant.admit(limit: limit, nowMilliseconds: now, length: 60).allowed)
            }
            #expect(sameInstant.admit(limit: limit, nowMilliseconds: now, length: 60).allowed == false)

            guard decision.remaining == 0 else { continue }
            var onTime = counter
            #expect(onTime.admit(limit: limit, nowMilliseconds: now + decision.retryAfter * 1_000, length: 60).allowed)
            if decision.retryAfter > 1 {
                var early = counter
                #expect(early.admit(limit: limit, nowMilliseconds: now + (decision.retryAfter - 1) * 1_000, length: 60).allowed == false)
            }
        }
    }
}

/// A small deterministic generator, so the randomised tests fail the same way every run.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        self.state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var mixed = state
        mixed = (mixed ^ (mixed >> 30)) &* 0xbf58_476d_1ce4_e5b9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94d0_49bb_1331_11eb
        return mixed ^ (mixed >> 31)
    }
}
