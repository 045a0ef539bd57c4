import Foundation
import Hummingbird
import Logging
import ServiceCore

/// `POST /api/auth/invite`, `GET /api/auth/invitations`, `DELETE /api/auth/invitations/{id}` (admins,
/// owners and super_admins, within `RoleRules`, inside their own tenant unless super_admin) and
/// `POST /api/auth/accept-invitation` (public: the mailed token is the credential).
struct InvitationsController: Sendable {
    let auth: AuthController
    let invitations: any Invitations

    struct InviteRequest: Decodable {
        var email: String
        var role: String
        var fullName: String?
        /// Seed 000's switch; invitations only travel by mail, so only `true` is accepted.
        var sendInviteEmail: Bool?
        /// Another tenant to invite into: super_admins only.
        var tenantId: String?
    }

    struct AcceptRequest: Decodable {
        var token: String
        var password: String
        var fullName: String
    }

    struct InvitationView: Codable, Sendable {
        var invitationId: String
        var tenantId: String
        var email: String
        var fullName: String?
        var role: String
        var status: String
        var invitedBy: String?
        /// The account it made, once accepted.
        var userId: String?
        var createdAt: Date
        var expiresAt: Date
        var acceptedAt: Date?
        var revokedAt: Date?
        /// Only in the answer to the invitation itself: its mail is queued.
        var inviteSent: Bool?

        init(_ invitation: InvitationRecord, inviteSent: Bool? = nil) {
            self.invitationId = invitation.id.lowercased
            self.tenantId = invitation.tenantID.lowercased
            self.email = invitation.email
            self.fullName = invitation.fullName
            self.role = invitation.role.rawValue
            self.status = invitation.status.rawValue
            self.invitedBy = invitation.invitedBy?.lowercased
            self.userId = invitation.userID?.lowercased
            self.createdAt = invitation.createdAt
            self.expiresAt = invitation.expiresAt
            self.acceptedAt = invitation.acceptedAt
            self.revokedAt = invitation.revokedAt
            self.inviteSent = inviteSent
        }
    }

    struct InvitationList: Codable, Sendable {
        var invitations: [InvitationView]
        var total: Int
        var limit: Int
        var offset: Int
    }

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        group.post("accept-invitation", use: accept)
        let signedIn = group.group().add(middleware: JWTAuthMiddleware(verifier: auth.verifier))
        signedIn.post("invite", use: invite)
        signedIn.get("invitations", use: list)
        signedIn.delete("invitations/:invitationID", use: revoke)
    }

    @Sendable func invite(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<InvitationView> {
        let actor = try Actor(context.requireIdentity())
        guard RoleRules.mayManageUsers(actor.role) else { throw UsersController.managersOnly }
        let input = try await request.decodeJSON(as: InviteRequest.self, context: context)
        let email = CredentialPolicy.normalizedEmail(input.email)
        let fullName = input.fullName?.trimmingCharacters(in: .whitespacesAndNewlines)
        var problems: [String: [String]] = [:]
        let emailProblems = email.isEmpty ? ["is required"] : CredentialPolicy.emailProblems(email)
        if !emailProblems.isEmpty { problems["email"] = emailProblems }
        let role = Role(rawValue: input.role)
        if role == nil { problems["role"] = ["must be one of \(UsersController.roleNames)"] }
        if let problem = CredentialPolicy.fullNameProblems(fullName).first { problems["full_name"] = [problem] }
        if input.sendInviteEmail == false { problems["send_invite_email"] = ["must be true: invitations are delivered by mail"] }
        let asked = input.tenantId.map { UUID(uuidString: $0) }
        if asked == .some(nil) { problems["tenant_id"] = ["must be a tenant id"] }
        guard problems.isEmpty, let role else { throw AppError.validation(problems) }

        // Only a super_admin invites into another tenant; to anyone else, other tenants do not exist.
        let tenant = asked.flatMap { $0 } ?? actor.tenantID
        guard tenant == actor.tenantID || actor.role == .superAdmin else { throw PostgresInvitations.tenantNotFound }
        if let refusal = RoleRules.refusal(actor: actor.role, current: role, new: role) {
            throw RoleRules.notAllowed(refusal)
        }
        // super_admins belong to the platform, not to a customer's tenant.
        if role == .superAdmin, tenant != SuperAdminBootstrap.platformTenantID {
            throw AppError.validation(["role": ["super_admin is only given in the platform tenant (no tenant_id)"]])
        }
        let invitation = try await invitations.invite(
            NewInvitation(tenantID: tenant, email: email, role: role, fullName: fullName?.isEmpty == true ? nil : fullName), by: actor,
            logger: context.logger
        )
        context.logger.notice(
            "invitation made", metadata: ["invitation_id": "\(invitation.id)", "tenant_id": "\(tenant)", "role": "\(role.rawValue)", "by": "\(actor.id)"]
        )
        return JSONResponse(InvitationView(invitation, inviteSent: true), status: .created)
    }

    @Sendable func list(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<InvitationList> {
        let actor = try Actor(context.requireIdentity())
        guard RoleRules.mayManageUsers(actor.role) else { throw UsersController.managersOnly }
        var problems: [String: [String]] = [:]
        let listing = ListingQuery(request, actor: actor, problems: &problems)
        var status: InvitationStatus?
        if let raw = request.uri.queryParameters["status"] {
            status = InvitationStatus(rawValue: String(raw))
            if status == nil { problems["status"] = ["must be one of \(InvitationStatus.allCases.map(\.rawValue).joined(separator: ", "))"] }
        }
        guard problems.isEmpty else { throw AppError.validation(problems) }
        let page = try await invitations.list(
            InvitationFilter(tenant: listing.tenant, status: status, limit: listing.limit, offset: listing.offset), logger: context.logger
        )
        return JSONResponse(
            InvitationList(invitations: page.invitations.map { InvitationView($0) }, total: page.total, limit: listing.limit, offset: listing.offset)
        )
    }

    @Sendable func revoke(_ request: Request, context: AppRequestContext) async throws -> Response {
        let actor = try Actor(context.requireIdentity())
        guard RoleRules.mayManageUsers(actor.role) else { throw UsersController.managersOnly }
        guard let raw = context.parameters.get("invitationID"), let id = UUID(uuidString: raw) else { throw PostgresInvitations.notFound }
        try await invitations.revoke(id, by: actor, logger: context.logger)
        context.logger.notice("invitation revoked", metadata: ["invitation_id": "\(id)", "by": "\(actor.id)"])
        return Response(status: .noContent)
    }

    @Sendable func accept(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<AuthController.LoginResponse> {
        let input = try await request.decodeJSON(as: AcceptRequest.self, context: context)
        let fullName = input.fullName.trimmingCharacters(in: .whitespacesAndNewlines)
        var problems: [String: [String]] = [:]
        if input.token.isEmpty { problems["token"] = ["is required"] }
        let policy = CredentialPolicy.passwordProblems(input.password)
        if !policy.isEmpty { problems["password"] = policy }
        if fullName.isEmpty { problems["full_name"] = ["is required"] }
        if let problem = CredentialPolicy.fullNameProblems(fullName).first { problems["full_name"] = [problem] }
        guard problems.isEmpty else { throw AppError.validation(problems) }

        // 401 without `WWW-Authenticate`, as for a reset link: the refused credential is the mailed token.
        let invalid = AppError.rejectedCredentials("The invitation is invalid, used, revoked or has expired", code: "INVITATION_ERROR")
        // Looked at before a bcrypt hash is spent on it; not one of our tokens' shape: not looked up at all.
        guard input.token.utf8.count <= 128, let tenant = try await invitations.pendingTenant(token: input.token, logger: context.logger) else {
            throw invalid
        }
        try await auth.refuseSuspendedTenant(tenant, logger: context.logger)
        let hash = try await auth.hasher.hash(input.password)
        guard let user = try await invitations.accept(token: input.token, passwordHash: hash, fullName: fullName, logger: context.logger) else {
            throw invalid
        }
        let tokens = try await auth.signIn(user, logger: context.logger)
        context.logger.notice("invitation accepted", metadata: ["user_id": "\(user.id)", "tenant_id": "\(user.tenantID)", "role": "\(user.role.rawValue)"])
        return JSONResponse(auth.response(for: user, tokens), status: .created)
    }
}
