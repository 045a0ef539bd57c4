import Foundation

/// billing → chat, tenancy (`GET /internal/entitlements/{tenant_id}`): what a tenant's plan allows
/// right now. chat asks it before each user message (cached a few seconds) and refuses the message
/// with 402 when `chatAllowed` is false.
package struct TenantEntitlement: Codable, Sendable, Equatable {
    /// Plan-gated features (analytics for pro and up, white label for enterprise).
    package struct Features: Codable, Sendable, Equatable {
        package var analytics: Bool
        package var whiteLabel: Bool

        package init(analytics: Bool, whiteLabel: Bool) {
            self.analytics = analytics
            self.whiteLabel = whiteLabel
        }
    }

    package var tenantId: UUID
    package var plan: String
    /// The subscription's state: `trialing`, `active`, `past_due`, `canceled` or `incomplete`.
    package var status: String
    package var isTrialExpired: Bool
    /// Messages the plan allows in the current period.
    package var monthlyQuota: Int
    /// Messages answered in the current period.
    package var used: Int
    /// Start and end of the period `used` counts in.
    package var periodStart: Date
    package var periodEnd: Date
    /// Whether one more chat message is allowed now.
    package var chatAllowed: Bool
    /// Why `chatAllowed` is false, in words a tenant's admin can act on (nil when allowed).
    package var reason: String?
    package var features: Features

    package init(
        tenantId: UUID, plan: String, status: String, isTrialExpired: Bool, monthlyQuota: Int, used: Int, periodStart: Date,
        periodEnd: Date, chatAllowed: Bool, reason: String?, features: Features
    ) {
        self.tenantId = tenantId
        self.plan = plan
        self.status = status
        self.isTrialExpired = isTrialExpired
        self.monthlyQuota = monthlyQuota
        self.used = used
        self.periodStart = periodStart
        self.periodEnd = periodEnd
        self.chatAllowed = chatAllowed
        self.reason = reason
        self.features = features
    }
}

/// `chat.message_answered`, chat → billing: the assistant answered one user message of a tenant.
/// billing counts it once per event id towards the tenant's usage in the period holding `answeredAt`.
package struct MessageAnswered: Codable, Sendable, Equatable {
    package var tenantId: UUID
    package var messageId: UUID
    package var conversationId: UUID?
    package var answeredAt: Date

    package static let type: EventType = "chat.message_answered"

    package init(tenantId: UUID, messageId: UUID, conversationId: UUID?, answeredAt: Date) {
        self.tenantId = tenantId
        self.messageId = messageId
        self.conversationId = conversationId
        self.answeredAt = answeredAt
    }
}
