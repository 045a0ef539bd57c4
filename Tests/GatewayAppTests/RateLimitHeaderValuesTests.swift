import Foundation
import Testing

@testable import GatewayApp

@Suite struct RateLimitHeaderValuesTests {
    private let now = Date(timeIntervalSince1970: 1_800_000_030)

    @Test func anAdmittedRequest() {
        let decision = RateLimitDecision(
            allowed: true, limit: 60, remaining: 12, resetAt: 1_800_000_060, retryAfter: 1, policyWindowSeconds: 60
        )
        let values = RateLimitHeaderValues(decision, policyName: "tenant", now: now)
        #expect(values.limit == "60")
        #expect(values.remaining == "12")
        #expect(values.reset == "1800000060")
        #expect(values.policy == #""tenant";q=60;w=60"#)
        #expect(values.rateLimit == #""tenant";r=12;t=30"#)
        #expect(values.retryAfter == nil)
        let names = ["X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "RateLimit-Policy", "RateLimit"]
        #expect(values.fields.map(\.name) == names)
    }

    @Test func aRefusedRequestPointsAtTheNextAdmission() {
        let decision = RateLimitDecision(
            allowed: false, limit: 10, remaining: 0, resetAt: 1_800_000_060, retryAfter: 6, policyWindowSeconds: 60
        )
        let values = RateLimitHeaderValues(decision, policyName: "auth", now: now)
        #expect(values.rateLimit == #""auth";r=0;t=6"#)
        #expect(values.retryAfter == "6")
        #expect(values.fields.last?.name == "Retry-After")
        #expect(values.fields.last?.value == "6")
    }

    @Test func theLastAdmittedRequestAlsoPointsAtTheNextAdmission() {
        let decision = RateLimitDecision(
            allowed: true, limit: 10, remaining: 0, resetAt: 1_800_000_060, retryAfter: 40, policyWindowSeconds: 60
        )
        let values = RateLimitHeaderValues(decision, policyName: "ip", now: now)
        #expect(values.rateLimit == #""ip";r=0;t=40"#)
        #expect(values.retryAfter == nil)
    }

    @Test func resetSecondsRoundUpAndNeverGoNegative() {
        let decision = RateLimitDecision(
            allowed: true, limit: 5, remaining: 4, resetAt: 1_800_000_060, retryAfter: 1, policyWindowSeconds: 60
        )
        let early = RateLimitHeaderValues(decision, policyName: "ip", now: Date(timeIntervalSince1970: 1_800_000_030.2))
        let late = RateLimitHeaderValues(decision, policyName: "ip", now: Date(timeIntervalSince1970: 1_800_000_070))
        #expect(early.rateLimit == #""ip";r=4;t=30"#)
        #expect(late.rateLimit == #""ip";r=4;t=0"#)
    }

    @Test func policyNamesAreStructuredFieldStrings() {
        #expect(RateLimitHeaderValues.structuredString("tenant") == #""tenant""#)
        #expect(RateLimitHeaderValues.structuredString(#"a"b\c"#) == #""a\"b\\c""#)
        #expect(RateLimitHeaderValues.structuredString("é\u{7}x\ny") == #""xy""#)
        #expect(RateLimitHeaderValues.structuredString("") == #""""#)
    }

    @Test func fromARealDecision() {
        let limiter = RateLimiter(maxKeys: 100)
        let checkedAt = Date(timeIntervalSince1970: 1_800_000_015)
        for _ in 0..<3 { _ = limiter.check(key: "k", limit: 3, now: checkedAt) }
        let refused = limiter.check(key: "k", limit: 3, now: checkedAt)
        let values = RateLimitHeaderValues(refused, policyName: "session", now: checkedAt)
        #expect(values.policy == #""session";q=3;w=60"#)
        #expect(values.rateLimit == #""session";r=0;t=65"#)
        #expect(values.reset == "1800000060")
        #expect(values.retryAfter == "65")
    }
}
