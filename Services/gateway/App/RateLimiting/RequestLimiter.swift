import Foundation

/// Counts requests against per-key limits: in this replica's memory (`RateLimiter`), or shared by
/// every replica through PostgreSQL (`SharedRateLimiter`).
protocol RequestLimiter: Sendable {
    /// The decision now, or nil when it needs a round trip first (`decisionAfterWaiting`).
    func decision(key: String, limit: Int, now: Date) -> RateLimitDecision?
    /// The decision after whatever round trip it needs; nil when the limiter cannot decide (its
    /// database is unreachable and it is set to fail closed).
    func decisionAfterWaiting(key: String, limit: Int) async -> RateLimitDecision?
}

extension RateLimiter: RequestLimiter {
    func decision(key: String, limit: Int, now: Date) -> RateLimitDecision? {
        check(key: key, limit: limit, now: now)
    }

    func decisionAfterWaiting(key: String, limit: Int) async -> RateLimitDecision? {
        check(key: key, limit: limit)
    }
}
