import Foundation

/// A tenant as it stands after a change that other services keep a copy of or act on. The events
/// `tenancy.tenant_renamed`, `tenancy.tenant_suspended` and `tenancy.tenant_reactivated` all carry
/// this whole state, not a difference: events arrive in any order, so a receiver keeps the state
/// with the highest `version` and ignores an older one.
package struct TenantChanged: Codable, Sendable, Equatable {
    package var tenantId: UUID
    package var name: String
    package var slug: String
    /// `active`, `trial` or `suspended`.
    package var status: String
    /// tenancy's `updated_at` of the change in Unix microseconds: a later change of the tenant has a
    /// higher one (a timestamp on the wire has whole seconds only, too coarse to order by).
    package var version: Int64

    package init(tenantId: UUID, name: String, slug: String, status: String, version: Int64) {
        self.tenantId = tenantId
        self.name = name
        self.slug = slug
        self.status = status
        self.version = version
    }

    /// tenancy → auth, chat: the tenant's name changed (auth's directory copy follows).
    package static let renamed: EventType = "tenancy.tenant_renamed"
    /// tenancy → auth, chat: the tenant was suspended (chat stops its sessions).
    package static let suspended: EventType = "tenancy.tenant_suspended"
    /// tenancy → auth, chat: a suspended tenant is `active` or `trial` again.
    package static let reactivated: EventType = "tenancy.tenant_reactivated"

    package static let types: [EventType] = [renamed, suspended, reactivated]
}

/// tenancy → auth (`POST /internal/tenant-owner-invitations`): invite the owner of a tenant a
/// super_admin created; auth records the tenant in its directory and mails the invitation.
package struct OwnerInvitationRequest: Codable, Sendable {
    package var tenantId: UUID
    package var tenantName: String
    package var tenantSlug: String
    package var email: String
    package var fullName: String?
    /// The super_admin who created the tenant.
    package var invitedBy: UUID

    package init(tenantId: UUID, tenantName: String, tenantSlug: String, email: String, fullName: String?, invitedBy: UUID) {
        self.tenantId = tenantId
        self.tenantName = tenantName
        self.tenantSlug = tenantSlug
        self.email = email
        self.fullName = fullName
        self.invitedBy = invitedBy
    }
}

/// auth → tenancy: the owner invitation that was made and mailed.
package struct OwnerInvitation: Codable, Sendable, Equatable {
    package var invitationId: UUID
    package var email: String
    package var expiresAt: Date

    package init(invitationId: UUID, email: String, expiresAt: Date) {
        self.invitationId = invitationId
        self.email = email
        self.expiresAt = expiresAt
    }
}

/// chat → tenancy (`GET /internal/usage?days=&tenant_id=`): stored messages and started sessions
/// per UTC day, oldest first, every day of the window present (zeros included).
package struct ChatUsage: Codable, Sendable, Equatable {
    package struct Day: Codable, Sendable, Equatable {
        /// `YYYY-MM-DD`, UTC.
        package var date: String
        /// Messages stored that day, the end user's and the assistant's.
        package var messages: Int
        /// Of them, the end users' own.
        package var userMessages: Int
        /// Widget sessions started that day.
        package var sessions: Int

        package init(date: String, messages: Int, userMessages: Int, sessions: Int) {
            self.date = date
            self.messages = messages
            self.userMessages = userMessages
            self.sessions = sessions
        }
    }

    /// nil: every tenant.
    package var tenantId: UUID?
    package var days: [Day]

    package init(tenantId: UUID?, days: [Day]) {
        self.tenantId = tenantId
        self.days = days
    }
}
