import Foundation
import InternalAPI
import Logging
import PostgresNIO
import ServiceCore

extension PostgresInvitations {
    /// The owner's invitation to a tenant a super_admin created in tenancy: the tenant enters the
    /// directory and the invitation is made and mailed as `invite` makes one, in one transaction
    /// (tenancy's compensation, `DELETE /internal/tenants/{id}`, removes both again).
    func inviteOwner(_ request: OwnerInvitationRequest, email: String, logger: Logger) async throws -> InvitationRecord {
        let actor = Actor(id: request.invitedBy, tenantID: SuperAdminBootstrap.platformTenantID, role: .superAdmin)
        do {
            return try await client.transaction(logger: logger) { connection in
                try await PostgresUserRepository.enterDirectory(
                    request.tenantId, name: request.tenantName, slug: request.tenantSlug, on: connection, logger: logger
                )
                return try await invite(
                    NewInvitation(tenantID: request.tenantId, email: email, role: .owner, fullName: request.fullName), by: actor,
                    on: connection, logger: logger
                )
            }
        } catch where error.isUniqueViolation {
            // Only the directory's slug is unique here: an entry of another tenant still holds it.
            throw AppError.conflict("A tenant already has this slug", code: "SLUG_TAKEN")
        }
    }
}

extension Actor {
    /// Someone acting for a service's caller (tenancy tells who the super_admin was).
    init(id: UUID, tenantID: UUID, role: Role) {
        self.id = id
        self.tenantID = tenantID
        self.role = role
    }
}
