import Foundation
import HTTPTypes
import Logging
import PostgresNIO

/// A subscription's state, as stored in `subscriptions.status` and shown to tenants.
enum SubscriptionStatus: String, Sendable, Codable, CaseIterable {
    case trialing, active, incomplete, canceled
    case pastDue = "past_due"
}

/// What can happen to a subscription. Each is recorded (`subscription_transitions.event`) with its cause.
enum SubscriptionEvent: String, Sendable, Codable, CaseIterable {
    /// A payment for a plan period was approved (by the provider, or marked paid by a super_admin).
    case paymentApproved = "payment_approved"
    /// A first payment came back pending or rejected.
    case paymentNotApproved = "payment_not_approved"
    /// The trial's end passed without a payment (the status stays `trialing`; `is_trial_expired`).
    case trialExpired = "trial_expired"
    /// A paid period ended with no payment for the next one.
    case periodEndedUnpaid = "period_ended_unpaid"
    /// A period ended on a subscription cancelled for its end.
    case periodEndedCanceled = "period_ended_canceled"
    /// `SUBSCRIPTION_GRACE_DAYS` passed in `past_due`.
    case graceElapsed = "grace_elapsed"
    /// The tenant cancelled: at once when nothing is paid ahead, else at the period's end.
    case cancelRequested = "cancel_requested"
    /// A downgrade was asked for; it takes effect at the period's end.
    case planChangeScheduled = "plan_change_scheduled"
    /// A scheduled downgrade took effect at the period's end.
    case scheduledPlanApplied = "scheduled_plan_applied"
    /// The provider failed to charge a renewal (Stripe's `invoice.payment_failed`, a subscription
    /// turned `past_due`/`unpaid`): the period is unpaid now, not at its end.
    case paymentFailed = "payment_failed"
    /// The provider changed the subscription (plan, period, cancel at period end) without a payment.
    case providerUpdated = "provider_updated"
    /// The provider ended the subscription (Stripe's `customer.subscription.deleted`).
    case providerCanceled = "provider_canceled"
    /// A payment of the subscription was refunded (in part or in full). As in Stripe Billing the
    /// status and the period stay (cancelling is its own request); the refund is on the record.
    case paymentRefunded = "payment_refunded"
}

/// Where a transition came from (`subscription_transitions.cause`).
enum TransitionCause: String, Sendable, Codable {
    case payment, webhook, scheduler, user, admin
}

/// The subscription lifecycle as one pure function, so every path that moves a subscription
/// (payments, webhooks, the scheduler, the tenant, an admin) agrees on what is allowed:
///
/// ```
/// trialing ──payment_approved──▶ active ──period_ended_unpaid──▶ past_due ──grace_elapsed──▶ canceled
///    │  ╲                           │  ▲                              │                          │
///    │   payment_not_approved       │  └──────payment_approved────────┴──────────────────────────┘
///    │          ▼                   └─period_ended_canceled (after cancel_requested)─▶ canceled
///    │     incomplete ──payment_approved──▶ active
///    └─trial_expired (stays trialing, is_trial_expired) / cancel_requested ─▶ canceled
/// ```
///
/// A provider that bills on its own (Stripe Billing) adds: active ──payment_failed──▶ past_due;
/// provider_updated (active, past_due: plan, cancel_at_period_end); provider_canceled ─▶ canceled from
/// any state but canceled; payment_refunded keeps the state (a refund on the record).
enum SubscriptionStateMachine {
    /// The status after `event`, or nil when `event` is not allowed in `status`.
    ///
    /// `cancelRequested` on a paid-ahead subscription (`active`, `past_due`) keeps its status: the
    /// tenant keeps access until `current_period_end`, when `periodEndedCanceled` ends it.
    static func next(from status: SubscriptionStatus, on event: SubscriptionEvent) -> SubscriptionStatus? {
        switch (status, event) {
        case (_, .paymentApproved): .active
        case (.trialing, .paymentNotApproved), (.incomplete, .paymentNotApproved): .incomplete
        case (.trialing, .trialExpired): .trialing
        case (.active, .periodEndedUnpaid): .pastDue
        case (.active, .periodEndedCanceled), (.pastDue, .periodEndedCanceled): .canceled
        case (.pastDue, .graceElapsed): .canceled
        case (.trialing, .cancelRequested), (.incomplete, .cancelRequested): .canceled
        case (.active, .cancelRequested), (.pastDue, .cancelRequested): status
        case (.active, .planChangeScheduled): .active
        case (.active, .scheduledPlanApplied): .active
        case (.active, .paymentFailed): .pastDue
        case (.active, .providerUpdated), (.pastDue, .providerUpdated): status
        case (.trialing, .providerCanceled), (.active, .providerCanceled), (.pastDue, .providerCanceled), (.incomplete, .providerCanceled): .canceled
        case (.trialing, .paymentRefunded), (.active, .paymentRefunded), (.pastDue, .paymentRefunded), (.incomplete, .paymentRefunded): status
        default: nil
        }
    }

    /// Whether the tenant may use the platform in `status` (a trial also needs `trial_ends_at` ahead).
    static func grantsAccess(_ status: SubscriptionStatus) -> Bool {
        switch status {
        case .trialing, .active, .pastDue: true
        case .incomplete, .canceled: false
        }
    }
}

/// Billing's notion of now. Production reads the system clock; tests move a `ManualClock` so that
/// trials, periods and grace days pass without sleeping.
protocol BillingClock: Sendable {
    func now() -> Date
}

struct SystemClock: BillingClock {
    func now() -> Date { Date() }
}
