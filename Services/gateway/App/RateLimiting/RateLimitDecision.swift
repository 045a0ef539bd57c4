/// What the limiter decided for one request, with the numbers the rate-limit response headers need.
struct RateLimitDecision: Equatable, Sendable {
    var allowed: Bool
    var limit: Int
    /// Further requests that would be admitted right now, after this one.
    var remaining: Int
    /// Unix time (seconds) at which the current aligned window ends.
    var resetAt: Int
    /// Seconds until the weighted count leaves room for one more request (1 while `remaining` > 0); never below 1,
    /// because Retry-After 0 invites a tight retry loop.
    var retryAfter: Int
    /// Length of the policy's window in seconds, for the `w` parameter of `RateLimit-Policy`.
    var policyWindowSeconds: Int
}
