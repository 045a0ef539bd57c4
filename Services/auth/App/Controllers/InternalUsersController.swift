import Foundation
import Hummingbird
import InternalAPI
import Logging
import ServiceCore

/// `/internal/*` for tenancy: create a tenant's owner, and undo it when registration fails later.
struct InternalUsersController: Sendable {
    let users: any UserRepository
    let issuer: TokenIssuer
    let auth: AuthController
    let emails: AccountEmails

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        group.post("owners", use: createOwner)
        group.delete("tenants/:tenantID", use: deleteTenant)
    }

    @Sendable func createOwner(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<CreatedOwner> {
        let input = try await request.decodeJSON(as: CreateOwnerRequest.self, context: context)
        let email = CredentialPolicy.normalizedEmail(input.email)
        var problems: [String: [String]] = [:]
        let emailProblems = CredentialPolicy.emailProblems(email)
        let passwordProblems = CredentialPolicy.passwordProblems(input.password)
        if !emailProblems.isEmpty { problems["email"] = emailProblems }
        if !passwordProblems.isEmpty { problems["password"] = passwordProblems }
        guard problems.isEmpty else { throw AppError.validation(problems) }

        let (user, tokens) = try await Enrolment(auth: auth, emails: emails).enrol(
            NewUser(
                tenantID: input.tenantId, tenantName: input.tenantName, tenantSlug: input.tenantSlug, email: email, passwordHash: "",
                fullName: input.fullName, role: .owner
            ),
            password: input.password, logger: context.logger
        )
        context.logger.info("owner created", metadata: ["user_id": "\(user.id)", "tenant_id": "\(user.tenantID)"])
        return JSONResponse(
            CreatedOwner(
                userId: user.id, email: user.email, role: user.role.rawValue, accessToken: tokens.accessToken, tokenType: "bearer",
                expiresIn: issuer.lifetimeSeconds, refreshToken: tokens.refreshToken.value
            ),
            status: .created
        )
    }

    @Sendable func deleteTenant(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantID = try context.parameters.require("tenantID", as: UUID.self)
        let removed = try await users.deleteTenant(tenantID, logger: context.logger)
        context.logger.notice("tenant users removed", metadata: ["tenant_id": "\(tenantID)", "users": "\(removed)"])
        return Response(status: .noContent)
    }
}
