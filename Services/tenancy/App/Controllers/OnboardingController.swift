import Foundation
import HTTPTypes
import Hummingbird
import InternalAPI
import ServiceCore

/// `POST /api/onboarding/register`: self-registration, safe to retry with an `Idempotency-Key`.
struct OnboardingController: Sendable {
    let registration: RegistrationService
    let idempotent: IdempotentRegistration

    struct RegisterRequest: Decodable {
        var email: String
        var password: String
        var accountName: String?
        var fullName: String?
    }

    struct RegisterResponse: Codable, Sendable {
        var accessToken: String
        var tokenType: String
        var expiresIn: Int
        var refreshToken: String
        var tenantId: String
        var tenantSlug: String
        var userId: String
        var email: String
        var accountName: String
        var trialEndsAt: Date?
    }

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        group.post("register", use: register)
    }

    @Sendable func register(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<RegisterResponse> {
        let key = try IdempotentRegistration.key(in: request.headers)
        let body = try await request.decodeJSON(as: RegisterRequest.self, context: context)
        let input = try Self.validated(body)
        let outcome: (IdempotentRegistration.Registered, CreatedOwner)
        if let key {
            outcome = try await idempotent.register(input, key: key, logger: context.logger)
        } else {
            let result = try await registration.register(input, logger: context.logger)
            outcome = (IdempotentRegistration.Registered(result), result.owner)
        }
        let (registered, owner) = outcome
        return JSONResponse(
            RegisterResponse(
                accessToken: owner.accessToken, tokenType: owner.tokenType, expiresIn: owner.expiresIn, refreshToken: owner.refreshToken,
                tenantId: registered.tenantId.uuidString.lowercased(), tenantSlug: registered.tenantSlug,
                userId: registered.userId.uuidString.lowercased(), email: registered.email, accountName: registered.accountName,
                trialEndsAt: registered.trialEndsAt
            ),
            status: .created
        )
    }

    /// Shape checks made here; the password policy is auth's and comes back from it as a 422.
    static func validated(_ body: RegisterRequest) throws -> RegistrationService.Input {
        var problems: [String: [String]] = [:]
        let email = body.email.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        if email.isEmpty {
            problems["email"] = ["is required"]
        } else if email.unicodeScalars.count > 254 || email.split(separator: "@", omittingEmptySubsequences: false).count != 2 {
            problems["email"] = ["must be a valid email address"]
        }
        if body.password.isEmpty { problems["password"] = ["is required"] }
        let accountName = body.accountName?.trimmingCharacters(in: .whitespacesAndNewlines)
        if let accountName, accountName.unicodeScalars.count > 100 { problems["account_name"] = ["must be at most 100 characters"] }
        let fullName = body.fullName?.trimmingCharacters(in: .whitespacesAndNewlines)
        if let fullName, fullName.unicodeScalars.count > 200 { problems["full_name"] = ["must be at most 200 characters"] }
        guard problems.isEmpty else { throw AppError.validation(problems) }
        return RegistrationService.Input(
            email: email,
            password: body.password,
            accountName: accountName?.isEmpty == false ? accountName : nil,
            fullName: fullName?.isEmpty == false ? fullName : nil
        )
    }
}
