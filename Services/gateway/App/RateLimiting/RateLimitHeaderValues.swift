import Foundation

/// The rate-limit response header values for one decision: the `X-RateLimit-*` trio clients already read, and the
/// `RateLimit-Policy` / `RateLimit` pair of the IETF draft (draft-ietf-httpapi-ratelimit-headers, 08 and later).
struct RateLimitHeaderValues: Equatable, Sendable {
    /// `X-RateLimit-Limit`: requests allowed per window.
    let limit: String
    /// `X-RateLimit-Remaining`.
    let remaining: String
    /// `X-RateLimit-Reset`: Unix seconds at which the current window ends.
    let reset: String
    /// `RateLimit-Policy`, e.g. `"tenant";q=60;w=60`.
    let policy: String
    /// `RateLimit`, e.g. `"tenant";r=12;t=30`.
    let rateLimit: String
    /// `Retry-After`, only for a refused request.
    let retryAfter: String?

    /// `policyName` names the limiter scope (`"ip"`, `"auth"`, `"tenant"`, …). `now` should be the instant passed to
    /// `RateLimiter.check`, since `t` counts from it.
    ///
    /// `t` is the draft's "seconds until additional quota is made available": with quota left that is the end of the
    /// current window (as `X-RateLimit-Reset`); with none left it is `retryAfter`, when the sliding window next admits
    /// a request, which can be well before the window ends.
    init(_ decision: RateLimitDecision, policyName: String, now: Date = Date()) {
        let name = Self.structuredString(policyName)
        let secondsToQuota = decision.secondsToQuota(now: now)
        self.limit = String(decision.limit)
        self.remaining = String(decision.remaining)
        self.reset = String(decision.resetAt)
        self.policy = "\(name);q=\(decision.limit);w=\(decision.policyWindowSeconds)"
        self.rateLimit = "\(name);r=\(decision.remaining);t=\(secondsToQuota)"
        self.retryAfter = decision.allowed ? nil : String(decision.retryAfter)
    }

    /// Header names and values in a fixed order, for copying into a response.
    var fields: [(name: String, value: String)] {
        var fields = [
            (name: "X-RateLimit-Limit", value: limit),
            (name: "X-RateLimit-Remaining", value: remaining),
            (name: "X-RateLimit-Reset", value: reset),
            (name: "RateLimit-Policy", value: policy),
            (name: "RateLimit", value: rateLimit),
        ]
        if let retryAfter { fields.append((name: "Retry-After", value: retryAfter)) }
        return fields
    }

    /// An RFC 9651 String: quoted, with `"` and `\` escaped. Characters a String cannot carry (controls, non-ASCII)
    /// are dropped rather than failing the response, since the name is informational.
    static func structuredString(_ text: String) -> String {
        var quoted = "\""
        for scalar in text.unicodeScalars where (0x20...0x7e).contains(scalar.value) {
            if scalar == "\"" || scalar == "\\" { quoted.append("\\") }
            quoted.unicodeScalars.append(scalar)
        }
        quoted.append("\"")
        return quoted
    }
}

extension RateLimitDecision {
    /// The draft's `t`, "seconds until additional quota is made available": with quota left, the
    /// end of the current window (as `X-RateLimit-Reset`); with none left, `retryAfter`, when the
    /// sliding window next admits a request, which can be well before the window ends. `now` should
    /// be the instant passed to `RateLimiter.check`, since `t` counts from it.
    func secondsToQuota(now: Date) -> Int {
        remaining > 0 ? max(0, Int((Double(resetAt) - now.timeIntervalSince1970).rounded(.up))) : retryAfter
    }
}
