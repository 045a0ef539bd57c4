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
    /// One registration attempt (tenancy's): creating the owner again under it answers the same
    /// user, and once auth has undone it (`DELETE /internal/tenants/{id}?registration_id=`) a late
    /// creation under it is refused with 410. Absent: a plain creation, refused when the email is taken.
    package var registrationId: UUID?

    package init(
        tenantId: UUID, tenantName: String, tenantSlug: String, email: String, password: String, fullName: String?, registrationId: UUID? = nil
    ) {
        self.tenantId = tenantId
        self.tenantName = tenantName
        self.tenantSlug = tenantSlug
        self.email = email
        self.password = password
        self.fullName = fullName
        self.registrationId = registrationId
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
    /// The first refresh token of the owner's session.
    package var refreshToken: String

    package init(userId: UUID, email: String, role: String, accessToken: String, tokenType: String, expiresIn: Int, refreshToken: String) {
        self.userId = userId
        self.email = email
        self.role = role
        self.accessToken = accessToken
        self.tokenType = tokenType
        self.expiresIn = expiresIn
        self.refreshToken = refreshToken
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
    /// Whether anyone may sign up into the tenant by its slug; absent (from an older tenancy) means no.
    package var allowSignup: Bool?
    /// Origins (`https://host[:port]`) whose pages may start widget sessions; empty or absent: any.
    package var allowedOrigins: [String]?
    /// The tenant's settings language (ISO 639-1, such as `es`); absent from an older tenancy.
    /// chat's knowledge base picks the text-search configuration of its chunks by it.
    package var language: String?

    package init(
        id: UUID, name: String, slug: String, status: String, rateLimitPerMinute: Int, agentName: String, greetingMessage: String,
        allowSignup: Bool? = nil, allowedOrigins: [String]? = nil, language: String? = nil
    ) {
        self.id = id
        self.name = name
        self.slug = slug
        self.status = status
        self.rateLimitPerMinute = rateLimitPerMinute
        self.agentName = agentName
        self.greetingMessage = greetingMessage
        self.allowSignup = allowSignup
        self.allowedOrigins = allowedOrigins
        self.language = language
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
    /// Origins whose pages may run the tenant's widget (lower case, no default port): the gateway
    /// lets them make cross-origin calls to the widget's routes. Absent from older tenancy versions.
    package var allowedOrigins: [String]?

    /// `updatedAt` in Unix microseconds, the feed's cursor unit (PostgreSQL's precision).
    package var updatedAtMicroseconds: Int64 { Int64((updatedAt.timeIntervalSince1970 * 1_000_000).rounded()) }

    package init(tenantId: String, status: String, rateLimitPerMinute: Int, updatedAt: Date, allowedOrigins: [String]? = nil) {
        self.tenantId = tenantId
        self.status = status
        self.rateLimitPerMinute = rateLimitPerMinute
        self.updatedAt = updatedAt
        self.allowedOrigins = allowedOrigins
    }
}

/// One page of tenant policies changed since a point, oldest change first; `next` continues it.
package struct TenantPolicyPage: ChangeFeedPage, Codable, Equatable {
    package var policies: [TenantPolicy]
    /// Query for the next page, nil on the last one.
    package var next: FeedCursor?

    package init(policies: [TenantPolicy], next: FeedCursor?) {
        self.policies = policies
        self.next = next
    }

    package var newestChange: Int64? { policies.last?.updatedAtMicroseconds }
}

/// A page of a change feed the gateway follows (`changed_since`, `after`, `limit`): rows changed
/// since a point, oldest change first. Applying a row twice is harmless, so a follower re-reads a
/// few seconds back on each pass and a change committed late, with an earlier timestamp, is not missed.
package protocol ChangeFeedPage: Decodable, Sendable {
    /// Query for the next page, nil on the last one.
    var next: FeedCursor? { get }
    /// The newest change on the page, Unix microseconds.
    var newestChange: Int64? { get }
}

/// Where a page of a change feed ends: changes after (`changedSince`, `after`).
package struct FeedCursor: Codable, Sendable, Equatable {
    /// Unix microseconds (PostgreSQL's precision, so a page boundary is exact).
    package var changedSince: Int64
    /// The key of the last row of the page, in the feed's own form; `""` (or, for tenant policies,
    /// `noTenant`) before every row.
    package var after: String

    /// Before every tenant: the nil id, which no tenant has.
    package static let noTenant = "00000000-0000-0000-0000-000000000000"

    package init(changedSince: Int64, after: String) {
        self.changedSince = changedSince
        self.after = after
    }
}

/// auth → gateway: an access-token revocation. `session`: every token of that refresh family
/// (`sid`) is void (logout, a reused refresh token). `user`: every token of that user minted with
/// a version (`ver`) below `minTokenVersion` is void (logout everywhere, a role or password
/// change, a deleted user).
package struct Revocation: Codable, Sendable, Equatable {
    package enum Kind: String, Codable, Sendable {
        case session, user
    }

    package var kind: Kind
    /// The session id or the user id, lower case.
    package var subject: String
    /// For `user`: the lowest token version still valid.
    package var minTokenVersion: Int?
    package var updatedAt: Date
    /// Every token the entry voids has expired by then, so a follower forgets it.
    package var expiresAt: Date

    package init(kind: Kind, subject: String, minTokenVersion: Int?, updatedAt: Date, expiresAt: Date) {
        self.kind = kind
        self.subject = subject
        self.minTokenVersion = minTokenVersion
        self.updatedAt = updatedAt
        self.expiresAt = expiresAt
    }

    /// `updatedAt` in Unix microseconds, the feed's cursor unit.
    package var updatedAtMicroseconds: Int64 { Int64((updatedAt.timeIntervalSince1970 * 1_000_000).rounded()) }

    /// The feed's key of this row: `kind:subject`.
    package var feedKey: String { "\(kind.rawValue):\(subject)" }
}

/// One page of the revocation feed (`/internal/gateway/revocations`), oldest change first.
package struct RevocationPage: ChangeFeedPage, Codable, Equatable {
    package var revocations: [Revocation]
    package var next: FeedCursor?

    package init(revocations: [Revocation], next: FeedCursor?) {
        self.revocations = revocations
        self.next = next
    }

    package var newestChange: Int64? { revocations.last?.updatedAtMicroseconds }
}
