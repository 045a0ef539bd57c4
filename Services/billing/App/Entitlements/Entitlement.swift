import Foundation
import InternalAPI

/// What a tenant's subscription allows at a moment: the one place that decides whether one more
/// chat message may be answered. Pure, so every rule is tested without a database or a clock.
enum Entitlement {
    /// Plan-gated features (seed 002): analytics from pro up, white label for enterprise. A running
    /// trial has both (the trial plan is "every feature, for a limited time"); an ended one neither.
    static func features(plan: String, trialRunning: Bool = false) -> TenantEntitlement.Features {
        if plan == "trial" { return TenantEntitlement.Features(analytics: trialRunning, whiteLabel: trialRunning) }
        return TenantEntitlement.Features(analytics: plan == "pro" || plan == "enterprise", whiteLabel: plan == "enterprise")
    }

    /// - Parameters:
    ///   - used: messages counted in `period` (the period `UsagePeriod.holding(now, …)` gives).
    static func evaluate(_ subscription: Subscription, used: Int, period: UsagePeriod, now: Date) -> TenantEntitlement {
        let trialExpired = subscription.status == "trialing" && (subscription.trialEndsAt.map { $0 <= now } ?? false)
        let quota = subscription.monthlyMessageQuota
        let reason: String?
        if trialExpired {
            reason = "The free trial ended on \(day(subscription.trialEndsAt!)); choose a plan to keep the assistant answering"
        } else if subscription.status == "canceled" {
            // A cancelation keeps access to the period's end as `active` with `cancel_at_period_end`;
            // `canceled` is after it (or Stripe ended the subscription at once): no access.
            reason = "The subscription was canceled; subscribe again to keep the assistant answering"
        } else if subscription.cancelAtPeriodEnd, let end = subscription.currentPeriodEnd, end <= now {
            // Cancelled for the period's end, which has passed; the scheduler's next pass records it.
            reason = "The subscription was canceled and its paid period ended on \(day(end)); subscribe again to keep the assistant answering"
        } else if subscription.status == "incomplete" {
            reason = "The subscription's first payment has not gone through; complete it to start answering"
        } else if used >= quota {
            reason = "This period's quota of \(quota) messages is used up; it renews on \(day(period.end)), or upgrade the plan for more"
        } else {
            reason = nil
        }
        return TenantEntitlement(
            tenantId: subscription.tenantID, plan: subscription.plan, status: subscription.status, isTrialExpired: trialExpired,
            monthlyQuota: quota, used: used, periodStart: period.start, periodEnd: period.end, chatAllowed: reason == nil, reason: reason,
            features: features(plan: subscription.plan, trialRunning: subscription.status == "trialing" && !trialExpired)
        )
    }

    private static func day(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle().year().month().day())
    }
}

extension UsagePeriod.Facts {
    init(_ subscription: Subscription) {
        self.init(
            status: subscription.status, createdAt: subscription.createdAt, trialEndsAt: subscription.trialEndsAt,
            currentPeriodStart: subscription.currentPeriodStart, currentPeriodEnd: subscription.currentPeriodEnd
        )
    }
}
