import Foundation
import Hummingbird
import InternalAPI
import Logging
import ServiceCore

/// `POST /internal/tenant-owner-invitations`, for tenancy alone: the owner invitation of a tenant
/// a super_admin created (`POST /api/admin/tenants`), mailed through the mail outbox.
struct InternalInvitationsController: Sendable {
    let invitations: PostgresInvitations

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        group.post("tenant-owner-invitations", use: inviteOwner)
    }

    @Sendable func inviteOwner(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<OwnerInvitation> {
        let input = try await request.decodeJSON(as: OwnerInvitationRequest.self, context: context)
        let email = CredentialPolicy.normalizedEmail(input.email)
        var problems: [String: [String]] = [:]
        let emailProblems = email.isEmpty ? ["is required"] : CredentialPolicy.emailProblems(email)
        if !emailProblems.isEmpty { problems["email"] = emailProblems }
        if let problem = CredentialPolicy.fullNameProblems(input.fullName).first { problems["full_name"] = [problem] }
        guard problems.isEmpty else { throw AppError.validation(problems) }
        let invitation = try await invitations.inviteOwner(input, email: email, logger: context.logger)
        context.logger.notice(
            "owner invitation made", metadata: ["invitation_id": "\(invitation.id)", "tenant_id": "\(input.tenantId)", "by": "\(input.invitedBy)"]
        )
        return JSONResponse(OwnerInvitation(invitationId: invitation.id, email: invitation.email, expiresAt: invitation.expiresAt), status: .created)
    }
}
