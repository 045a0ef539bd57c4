import Foundation
import HTTPTypes
import Hummingbird
import InternalAPI
import ServiceCore

/// `/api/onboarding/*`: self-registration and the onboarding checklist.
struct OnboardingController: Sendable {
    let registration: RegistrationService
    let tenants: any TenantRepository
    let billing: InternalClient
    let verifier: AccessTokenVerifier

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

    struct StatusResponse: Codable, Sendable {
        var tenantId: String
        var accountName: String
        var plan: String
        var subscriptionStatus: String
        var trialEndsAt: Date?
        var isTrialExpired: Bool
        var progress: OnboardingProgress
        var completionPercentage: Int
        var nextStep: String?
    }

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        group.post("register", use: register)
        group.group("status").add(middleware: JWTAuthMiddleware(verifier: verifier)).get(use: status)
    }

    @Sendable func register(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<RegisterResponse> {
        let body = try await request.decodeJSON(as: RegisterRequest.self, context: context)
        let input = try Self.validated(body)
        let result = try await registration.register(input, logger: context.logger)
        return JSONResponse(
            RegisterResponse(
                accessToken: result.owner.accessToken, tokenType: result.owner.tokenType, expiresIn: result.owner.expiresIn,
                refreshToken: result.owner.refreshToken,
                tenantId: result.tenant.id.uuidString.lowercased(), tenantSlug: result.tenant.slug,
                userId: result.owner.userId.uuidString.lowercased(), email: result.owner.email, accountName: result.tenant.name,
                trialEndsAt: result.trial.trialEndsAt
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

    @Sendable func status(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<StatusResponse> {
        let identity = try context.requireIdentity()
        guard let (tenant, _) = try await tenants.find(id: identity.tenantUUID, logger: context.logger),
            let progress = try await tenants.onboarding(tenantID: tenant.id, logger: context.logger)
        else {
            throw AppError.notFound("No onboarding for this account", code: "TENANT_NOT_FOUND")
        }
        let subscription: SubscriptionSummary
        do {
            subscription = try await billing.send(
                .get, "/internal/subscriptions/\(tenant.id.uuidString.lowercased())", as: SubscriptionSummary.self,
                logger: context.logger
            )
        } catch let error as InternalCallError {
            throw error.publicError
        }
        let steps: [(done: Bool, next: String?)] = [
            (progress.stepAccountCreated, nil),
            (progress.stepEmailVerified, "verify_email"),
            (progress.stepBrandingUploaded, "upload_branding"),
            (progress.stepKnowledgeBaseUploaded, "upload_knowledge_base"),
            (progress.stepAgentConfigured, "configure_agent"),
            (progress.stepWidgetTested, "test_widget"),
            (progress.stepPaymentCompleted, "complete_payment"),
        ]
        let done = steps.filter(\.done).count
        let trialExpired = subscription.status == "trialing" && (subscription.trialEndsAt.map { $0 <= Date() } ?? false)
        return JSONResponse(
            StatusResponse(
                tenantId: tenant.id.uuidString.lowercased(), accountName: tenant.name, plan: subscription.plan,
                subscriptionStatus: subscription.status, trialEndsAt: subscription.trialEndsAt, isTrialExpired: trialExpired,
                progress: progress, completionPercentage: done * 100 / steps.count,
                nextStep: steps.first(where: { !$0.done })?.next
            )
        )
    }
}
