import Foundation

// The wire contract of the `/internal/*` routes. Both sides of each call use these types, so a
// change to a shape is a change to both services in one commit.

/// tenancy → auth: create the owner of a new tenant and mint their first access token.
package struct CreateOwnerRequest: Codable, Sendable {
    package var tenantId: UUID
    package var tenantName: String
    package var tenantSlug: String
    package var email: String
    package var password: String
    package var fullName: String?

    package init(tenantId: UUID, tenantName: String, tenantSlug: String, email: String, password: String, fullName: String?) {
        self.tenantId = tenantId
        self.tenantName = tenantName
        self.tenantSlug = tenantSlug
        self.email = email
        self.password = password
        self.fullName = fullName
    }
}

/// auth → tenancy: the owner that was created, with a token for them.
package struct CreatedOwner: Codable, Sendable {
    package var userId: UUID
    package var email: String
    package var role: String
    package var accessToken: String
    package var tokenType: String
    package var expiresIn: Int

    package init(userId: UUID, email: String, role: String, accessToken: String, tokenType: String, expiresIn: Int) {
        self.userId = userId
        self.email = email
        self.role = role
        self.accessToken = accessToken
        self.tokenType = tokenType
        self.expiresIn = expiresIn
    }
}

/// tenancy → billing: start the trial of a new tenant (idempotent per tenant).
package struct StartTrialRequest: Codable, Sendable {
    package var tenantId: UUID

    package init(tenantId: UUID) {
        self.tenantId = tenantId
    }
}

/// billing → anyone: a tenant's subscription as other services need it.
package struct SubscriptionSummary: Codable, Sendable {
    package var tenantId: UUID
    package var plan: String
    package var status: String
    package var trialEndsAt: Date?
    package var currentPeriodEnd: Date?
    package var monthlyMessageQuota: Int

    package init(tenantId: UUID, plan: String, status: String, trialEndsAt: Date?, currentPeriodEnd: Date?, monthlyMessageQuota: Int) {
        self.tenantId = tenantId
        self.plan = plan
        self.status = status
        self.trialEndsAt = trialEndsAt
        self.currentPeriodEnd = currentPeriodEnd
        self.monthlyMessageQuota = monthlyMessageQuota
    }
}

/// tenancy → chat, gateway: what they need to know about a tenant.
package struct TenantSummary: Codable, Sendable, Equatable {
    package var id: UUID
    package var name: String
    package var slug: String
    package var status: String
    package var rateLimitPerMinute: Int
    package var agentName: String
    package var greetingMessage: String

    package init(id: UUID, name: String, slug: String, status: String, rateLimitPerMinute: Int, agentName: String, greetingMessage: String) {
        self.id = id
        self.name = name
        self.slug = slug
        self.status = status
        self.rateLimitPerMinute = rateLimitPerMinute
        self.agentName = agentName
        self.greetingMessage = greetingMessage
    }
}

/// tenancy → gateway: what the gateway enforces per tenant.
package struct TenantPolicy: Codable, Sendable, Equatable {
    /// Lower case, as access tokens carry it.
    package var tenantId: String
    /// `trial`, `active` or `suspended` (never `provisioning`).
    package var status: String
    package var rateLimitPerMinute: Int
    package var updatedAt: Date

    /// `updatedAt` in Unix microseconds, the feed's cursor unit (PostgreSQL's precision).
    package var updatedAtMicroseconds: Int64 { Int64((updatedAt.timeIntervalSince1970 * 1_000_000).rounded()) }

    package init(tenantId: String, status: String, rateLimitPerMinute: Int, updatedAt: Date) {
        self.tenantId = tenantId
        self.status = status
        self.rateLimitPerMinute = rateLimitPerMinute
        self.updatedAt = updatedAt
    }
}

/// One page of tenant policies changed since a point, oldest change first; `next` continues it.
package struct TenantPolicyPage: Codable, Sendable, Equatable {
    package var policies: [TenantPolicy]
    /// Query for the next page, nil on the last one.
    package var next: TenantPolicyCursor?

    package init(policies: [TenantPolicy], next: TenantPolicyCursor?) {
        self.policies = policies
        self.next = next
    }
}

/// Where a page of tenant policies ends: changes after (`changedSince`, `after`).
package struct TenantPolicyCursor: Codable, Sendable, Equatable {
    /// Unix microseconds (PostgreSQL's precision, so a page boundary is exact).
    package var changedSince: Int64
    /// A tenant id, lower case.
    package var after: String

    /// Before every tenant: the nil id, which no tenant has.
    package static let noTenant = "00000000-0000-0000-0000-000000000000"

    package init(changedSince: Int64, after: String) {
        self.changedSince = changedSince
        self.after = after
    }
}
