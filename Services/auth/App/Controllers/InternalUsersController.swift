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
    let registrations: OwnerRegistrations

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

        let owner = NewUser(
            tenantID: input.tenantId, tenantName: input.tenantName, tenantSlug: input.tenantSlug, email: email, passwordHash: "",
            fullName: input.fullName, role: .owner
        )
        let enrolment = Enrolment(auth: auth, emails: emails)
        let enrolled: (UserRecord, AuthController.Tokens, created: Bool)
        if let registrationID = input.registrationId {
            enrolled = try await enrolment.enrolOwner(
                owner, password: input.password, registrationID: registrationID, registrations: registrations, logger: context.logger
            )
        } else {
            let (user, tokens) = try await enrolment.enrol(owner, password: input.password, logger: context.logger)
            enrolled = (user, tokens, true)
        }
        let (user, tokens, created) = enrolled
        if created { context.logger.info("owner created", metadata: ["user_id": "\(user.id)", "tenant_id": "\(user.tenantID)"]) }
        return JSONResponse(
            CreatedOwner(
                userId: user.id, email: user.email, role: user.role.rawValue, accessToken: tokens.accessToken, tokenType: "bearer",
                expiresIn: issuer.lifetimeSeconds, refreshToken: tokens.refreshToken.value
            ),
            status: created ? .created : .ok
        )
    }

    /// With `?registration_id=`, the undo of that registration: it also leaves the tombstone that
    /// refuses a late owner creation under the id (`OwnerRegistrations`).
    @Sendable func deleteTenant(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantID = try context.parameters.require("tenantID", as: UUID.self)
        let removed: Int
        if let raw = request.uri.queryParameters.get("registration_id") {
            guard let registrationID = UUID(uuidString: raw) else {
                throw AppError.badRequest("registration_id must be a UUID", code: "INVALID_REGISTRATION_ID")
            }
            removed = try await registrations.undo(registrationID, tenantID: tenantID, logger: context.logger)
        } else {
            removed = try await users.deleteTenant(tenantID, logger: context.logger)
        }
        context.logger.notice("tenant users removed", metadata: ["tenant_id": "\(tenantID)", "users": "\(removed)"])
        return Response(status: .noContent)
    }
}
