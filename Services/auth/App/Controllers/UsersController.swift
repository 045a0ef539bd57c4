import Foundation
import Hummingbird
import Logging
import ServiceCore

/// `/api/auth/users*`, `PATCH /api/auth/me` and `POST /api/auth/change-password`: managing a
/// tenant's users (within `RoleRules`, always inside the caller's tenant unless super_admin) and
/// one's own profile and password.
struct UsersController: Sendable {
    let auth: AuthController
    let administration: any UserAdministration

    struct UserView: Codable, Sendable {
        var userId: String
        var tenantId: String
        var email: String
        var fullName: String?
        var role: String
        var status: String
        var emailVerified: Bool
        var createdAt: Date
        var lastLoginAt: Date?

        init(_ user: UserRecord) {
            self.userId = user.id.lowercased
            self.tenantId = user.tenantID.lowercased
            self.email = user.email
            self.fullName = user.fullName
            self.role = user.role.rawValue
            self.status = (user.emailVerifiedAt == nil ? UserStatus.unverified : .active).rawValue
            self.emailVerified = user.emailVerifiedAt != nil
            self.createdAt = user.createdAt
            self.lastLoginAt = user.lastLoginAt
        }
    }

    struct UserList: Codable, Sendable {
        var users: [UserView]
        var total: Int
        var limit: Int
        var offset: Int
    }

    struct RoleChange: Decodable {
        var role: String
    }

    struct ProfileChange: Decodable {
        var fullName: String?
    }

    struct PasswordChange: Decodable {
        var currentPassword: String
        var newPassword: String
        var confirmPassword: String
    }

    struct PasswordChanged: Codable, Sendable {
        var message: String
        /// A token for the session the change was made from: every older one is void now.
        var accessToken: String
        var tokenType: String
        var expiresIn: Int
    }

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        let signedIn = group.group().add(middleware: JWTAuthMiddleware(verifier: auth.verifier))
        signedIn.get("users", use: list)
        signedIn.put("users/:userID/role", use: changeRole)
        signedIn.delete("users/:userID", use: delete)
        signedIn.patch("me", use: updateProfile)
        signedIn.post("change-password", use: changePassword)
    }

    @Sendable func list(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<UserList> {
        let actor = try Actor(context.requireIdentity())
        guard RoleRules.mayManageUsers(actor.role) else { throw Self.managersOnly }
        let query = request.uri.queryParameters
        var problems: [String: [String]] = [:]
        let listing = ListingQuery(request, actor: actor, problems: &problems)
        var role: Role?
        if let raw = query["role"] {
            role = Role(rawValue: String(raw))
            if role == nil { problems["role"] = ["must be one of \(Self.roleNames)"] }
        }
        var status: UserStatus?
        if let raw = query["status"] {
            status = UserStatus(rawValue: String(raw))
            if status == nil { problems["status"] = ["must be active or unverified"] }
        }
        guard problems.isEmpty else { throw AppError.validation(problems) }
        let page = try await administration.list(
            UserFilter(tenant: listing.tenant, role: role, status: status, limit: listing.limit, offset: listing.offset), logger: context.logger
        )
        return JSONResponse(UserList(users: page.users.map(UserView.init), total: page.total, limit: listing.limit, offset: listing.offset))
    }

    @Sendable func changeRole(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<UserView> {
        let actor = try Actor(context.requireIdentity())
        let target = try Self.targetID(context)
        let input = try await request.decodeJSON(as: RoleChange.self, context: context)
        guard let role = Role(rawValue: input.role) else {
            throw AppError.validation(["role": ["must be one of \(Self.roleNames)"]])
        }
        let user = try await administration.changeRole(of: target, to: role, by: actor, logger: context.logger)
        context.logger.notice("role changed", metadata: ["user_id": "\(target)", "role": "\(role.rawValue)", "by": "\(actor.id)"])
        return JSONResponse(UserView(user))
    }

    @Sendable func delete(_ request: Request, context: AppRequestContext) async throws -> Response {
        let actor = try Actor(context.requireIdentity())
        let target = try Self.targetID(context)
        try await administration.delete(target, by: actor, logger: context.logger)
        context.logger.notice("user deleted", metadata: ["user_id": "\(target)", "by": "\(actor.id)"])
        return Response(status: .noContent)
    }

    @Sendable func updateProfile(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<AuthController.MeResponse> {
        let identity = try context.requireIdentity()
        let input = try await request.decodeJSON(as: ProfileChange.self, context: context)
        let fullName = input.fullName?.trimmingCharacters(in: .whitespacesAndNewlines)
        let problems = CredentialPolicy.fullNameProblems(fullName)
        guard problems.isEmpty else { throw AppError.validation(["full_name": problems]) }
        guard let user = try await administration.updateProfile(of: identity.userUUID, fullName: fullName?.isEmpty == true ? nil : fullName, logger: context.logger)
        else { throw AppError.unauthorized("User no longer exists", code: "INVALID_TOKEN") }
        return JSONResponse(auth.meResponse(user))
    }

    @Sendable func changePassword(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<PasswordChanged> {
        let identity = try context.requireIdentity()
        let input = try await request.decodeJSON(as: PasswordChange.self, context: context)
        var problems: [String: [String]] = [:]
        if input.currentPassword.isEmpty { problems["current_password", default: []].append("is required") }
        let policy = CredentialPolicy.passwordProblems(input.newPassword)
        if !policy.isEmpty { problems["new_password"] = policy }
        if input.confirmPassword != input.newPassword { problems["confirm_password", default: []].append("must match new_password") }
        if !input.newPassword.isEmpty, input.newPassword == input.currentPassword {
            problems["new_password", default: []].append("must differ from the current password")
        }
        guard problems.isEmpty else { throw AppError.validation(problems) }
        guard let user = try await auth.users.find(id: identity.userUUID, logger: context.logger) else {
            throw AppError.unauthorized("User no longer exists", code: "INVALID_TOKEN")
        }
        guard input.currentPassword.unicodeScalars.count <= CredentialPolicy.maxPasswordLength,
            try await auth.hasher.verify(input.currentPassword, against: user.passwordHash)
        else {
            throw AppError.validation(["current_password": ["is incorrect"]])
        }
        let hash = try await auth.hasher.hash(input.newPassword)
        let session = identity.sid.flatMap(UUID.init(uuidString:))
        guard let changed = try await administration.changePassword(of: user.id, to: hash, keeping: session, logger: context.logger) else {
            throw AppError.unauthorized("User no longer exists", code: "INVALID_TOKEN")
        }
        context.logger.notice("password changed", metadata: ["user_id": "\(user.id)"])
        let token = try await auth.issuer.issue(auth.claims(for: changed, session: session))
        return JSONResponse(
            PasswordChanged(
                message: "Password changed; every other session was signed out", accessToken: token, tokenType: "bearer",
                expiresIn: auth.issuer.lifetimeSeconds
            )
        )
    }

    private static func targetID(_ context: AppRequestContext) throws -> UUID {
        guard let raw = context.parameters.get("userID"), let id = UUID(uuidString: raw) else { throw PostgresUserAdministration.notFound }
        return id
    }

    static let roleNames = Role.allCases.map(\.rawValue).joined(separator: ", ")

    static let managersOnly = RoleRules.notAllowed("Only admins, owners and super_admins manage users")
}
