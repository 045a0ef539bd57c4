import Foundation

/// The window a tenant's message usage is counted in, so counters reset at each period start by
/// construction: every period has a counter row of its own, keyed by (tenant, start, end).
///
/// - A trial (`trialing` with `trial_ends_at`) has one window, from the subscription's creation
///   (the trial's start) to `trial_ends_at`.
/// - A subscription with a current period (`current_period_start` ≤ t < `current_period_end`)
///   counts in that period, whatever its status.
/// - Anything else (no subscription, no period yet, or a moment outside the current period, such
///   as a canceled subscription after its end) counts in the UTC calendar month holding t.
struct UsagePeriod: Sendable, Equatable {
    var start: Date
    var end: Date

    /// What the rule reads of a subscription.
    struct Facts: Sendable {
        var status: String
        var createdAt: Date
        var trialEndsAt: Date?
        var currentPeriodStart: Date?
        var currentPeriodEnd: Date?
    }

    static func holding(_ moment: Date, subscription: Facts?) -> UsagePeriod {
        if let subscription {
            if subscription.status == "trialing", let trialEnd = subscription.trialEndsAt, subscription.createdAt < trialEnd {
                return UsagePeriod(start: subscription.createdAt, end: trialEnd)
            }
            if let start = subscription.currentPeriodStart, let end = subscription.currentPeriodEnd, start <= moment, moment < end {
                return UsagePeriod(start: start, end: end)
            }
        }
        return calendarMonth(holding: moment)
    }

    static func calendarMonth(holding moment: Date) -> UsagePeriod {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let start = calendar.date(from: calendar.dateComponents([.year, .month], from: moment))!
        let end = calendar.date(byAdding: .month, value: 1, to: start)!
        return UsagePeriod(start: start, end: end)
    }
}
