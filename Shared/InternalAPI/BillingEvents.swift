import Foundation

/// `billing.subscription_changed`, billing → (no receiver yet): a tenant's subscription moved from
/// one state or plan to another, with what caused it. Every transition billing records is published.
package struct SubscriptionChanged: Codable, Sendable, Equatable {
    package var tenantId: UUID
    package var plan: String
    /// `trialing`, `active`, `past_due`, `canceled` or `incomplete`.
    package var status: String
    package var previousPlan: String?
    package var previousStatus: String?
    /// What happened (`payment_approved`, `period_ended_unpaid`, `grace_elapsed`, …).
    package var event: String
    /// Who caused it: `payment`, `webhook`, `scheduler`, `user` or `admin`.
    package var cause: String
    package var currentPeriodEnd: Date?
    package var cancelAtPeriodEnd: Bool

    package static let type: EventType = "billing.subscription_changed"

    package init(
        tenantId: UUID, plan: String, status: String, previousPlan: String?, previousStatus: String?, event: String, cause: String,
        currentPeriodEnd: Date?, cancelAtPeriodEnd: Bool
    ) {
        self.tenantId = tenantId
        self.plan = plan
        self.status = status
        self.previousPlan = previousPlan
        self.previousStatus = previousStatus
        self.event = event
        self.cause = cause
        self.currentPeriodEnd = currentPeriodEnd
        self.cancelAtPeriodEnd = cancelAtPeriodEnd
    }
}

/// `billing.trial_ending`, billing → (the trial-ending mail; no receiver yet): a tenant's trial ends
/// within three days and it has not paid. Published once per trial.
package struct TrialEnding: Codable, Sendable, Equatable {
    package var tenantId: UUID
    package var trialEndsAt: Date

    package static let type: EventType = "billing.trial_ending"

    package init(tenantId: UUID, trialEndsAt: Date) {
        self.tenantId = tenantId
        self.trialEndsAt = trialEndsAt
    }
}

/// `billing.trial_ended`, billing → (no receiver yet): a tenant's trial ended unpaid; chat is
/// refused from now on (`is_trial_expired`). Published once per trial.
package struct TrialEnded: Codable, Sendable, Equatable {
    package var tenantId: UUID
    package var trialEndsAt: Date

    package static let type: EventType = "billing.trial_ended"

    package init(tenantId: UUID, trialEndsAt: Date) {
        self.tenantId = tenantId
        self.trialEndsAt = trialEndsAt
    }
}
