import Foundation
import Hummingbird
import InternalAPI
import Logging
import ServiceCore

/// `POST /api/auth/signup`: joining an existing tenant by its slug, where the tenant allows it
/// (tenancy's `allow_signup`, off by default). New users get the role `user` and an unverified email.
struct SignupController: Sendable {
    let auth: AuthController
    let emails: AccountEmails
    let directory: TenantDirectory

    struct SignupRequest: Decodable {
        var email: String
        var password: String
        var tenantSlug: String
        var fullName: String?
    }

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        group.post("signup", use: signup)
    }

    @Sendable func signup(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<AuthController.LoginResponse> {
        let input = try await request.decodeJSON(as: SignupRequest.self, context: context)
        let email = CredentialPolicy.normalizedEmail(input.email)
        let fullName = input.fullName?.trimmingCharacters(in: .whitespacesAndNewlines)
        var problems: [String: [String]] = [:]
        let emailProblems = email.isEmpty ? ["is required"] : CredentialPolicy.emailProblems(email)
        if !emailProblems.isEmpty { problems["email"] = emailProblems }
        let passwordProblems = CredentialPolicy.passwordProblems(input.password)
        if !passwordProblems.isEmpty { problems["password"] = passwordProblems }
        if input.tenantSlug.isEmpty { problems["tenant_slug"] = ["is required"] }
        if let problem = CredentialPolicy.fullNameProblems(fullName).first { problems["full_name"] = [problem] }
        guard problems.isEmpty else { throw AppError.validation(problems) }

        guard let tenant = try await directory.tenant(slug: input.tenantSlug, logger: context.logger) else {
            throw AppError.notFound("No tenant has this slug", code: "TENANT_NOT_FOUND")
        }
        guard tenant.status != "suspended" else { throw AuthController.tenantSuspended }
        guard tenant.allowSignup == true else {
            throw AppError(.forbidden, code: "SIGNUP_DISABLED", detail: "This tenant does not accept sign-ups; ask an administrator for an invitation")
        }
        let (user, tokens) = try await Enrolment(auth: auth, emails: emails).enrol(
            NewUser(
                tenantID: tenant.id, tenantName: tenant.name, tenantSlug: tenant.slug, email: email, passwordHash: "",
                fullName: fullName?.isEmpty == true ? nil : fullName, role: .user
            ),
            password: input.password, logger: context.logger
        )
        context.logger.info("signed up", metadata: ["user_id": "\(user.id)", "tenant_id": "\(tenant.id)"])
        return JSONResponse(auth.response(for: user, tokens), status: .created)
    }
}
