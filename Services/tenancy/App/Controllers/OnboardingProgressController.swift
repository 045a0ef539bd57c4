import Foundation
import HTTPTypes
import Hummingbird
import InternalAPI
import Logging
import ServiceCore

/// `/api/onboarding/{status,complete-step,trial-info}`: the onboarding checklist and the trial.
struct OnboardingProgressController: Sendable {
    let tenants: any TenantRepository
    let progress: OnboardingProgressStore
    let billing: InternalClient
    let verifier: AccessTokenVerifier

    /// Seed 000's `OnboardingStatus`. The subscription fields come from billing; while billing
    /// cannot answer they are null and `billing_available` is false, and the rest still answers.
    struct StatusResponse: Encodable, Sendable {
        var tenantId: String
        var accountName: String
        var plan: String?
        var subscriptionStatus: String?
        var trialEndsAt: Date?
        var isTrialExpired: Bool?
        var billingAvailable: Bool
        var progress: OnboardingProgress
        var completionPercentage: Int
        var nextStep: String?
        var completedAt: Date?

        enum CodingKeys: String, CodingKey {
            case tenantId, accountName, plan, subscriptionStatus, trialEndsAt, isTrialExpired, billingAvailable, progress
            case completionPercentage, nextStep, completedAt
        }

        // Nulls are written out, so a client sees every field of the contract.
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(tenantId, forKey: .tenantId)
            try container.encode(accountName, forKey: .accountName)
            try container.encode(plan, forKey: .plan)
            try container.encode(subscriptionStatus, forKey: .subscriptionStatus)
            try container.encode(trialEndsAt, forKey: .trialEndsAt)
            try container.encode(isTrialExpired, forKey: .isTrialExpired)
            try container.encode(billingAvailable, forKey: .billingAvailable)
            try container.encode(progress, forKey: .progress)
            try container.encode(completionPercentage, forKey: .completionPercentage)
            try container.encode(nextStep, forKey: .nextStep)
            try container.encode(completedAt, forKey: .completedAt)
        }
    }

    struct CompleteStepResponse: Encodable, Sendable {
        var status: String
        var progress: OnboardingProgress
        var completionPercentage: Int
        var nextStep: String?
        var completedAt: Date?
    }

    /// Seed 000's `TrialInfo`.
    struct TrialInfo: Encodable, Sendable {
        var plan: String
        var status: String
        var trialEndsAt: Date?
        var daysRemaining: Int
        var isExpired: Bool
    }

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        let signedIn = group.group().add(middleware: JWTAuthMiddleware(verifier: verifier))
        signedIn.get("status", use: status)
        signedIn.put("complete-step", use: completeStep)
        signedIn.get("trial-info", use: trialInfo)
    }

    @Sendable func status(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<StatusResponse> {
        let identity = try context.requireIdentity()
        let (tenant, snapshot) = try await checklist(of: identity.tenantUUID, logger: context.logger)
        var subscription: SubscriptionSummary?
        do {
            subscription = try await self.subscription(of: tenant.id, logger: context.logger)
        } catch {
            context.logger.warning("onboarding status without billing's fields", metadata: ["error": "\(error)"])
        }
        return JSONResponse(
            StatusResponse(
                tenantId: tenant.id.uuidString.lowercased(), accountName: tenant.name, plan: subscription?.plan,
                subscriptionStatus: subscription?.status, trialEndsAt: subscription?.trialEndsAt,
                isTrialExpired: subscription.map(Self.isTrialExpired), billingAvailable: subscription != nil, progress: snapshot.progress,
                completionPercentage: snapshot.completionPercentage, nextStep: snapshot.nextStep, completedAt: snapshot.completedAt
            )
        )
    }

    /// Marks steps a person completes by hand (`step_widget_tested`); the others complete by
    /// themselves from what happens in the suite, and asking for them is a 422 that names why.
    @Sendable func completeStep(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<CompleteStepResponse> {
        let tenantID = try TenantAccess.ownManagedTenant(context)
        let body = try await request.decodeJSON(as: [String: JSONValue].self, context: context)
        let steps = try Self.handMarkedSteps(body)
        _ = try await checklist(of: tenantID, logger: context.logger)
        try await progress.mark(steps, tenantID: tenantID, logger: context.logger)
        let (_, snapshot) = try await checklist(of: tenantID, logger: context.logger)
        return JSONResponse(
            CompleteStepResponse(
                status: "updated", progress: snapshot.progress, completionPercentage: snapshot.completionPercentage,
                nextStep: snapshot.nextStep, completedAt: snapshot.completedAt
            )
        )
    }

    @Sendable func trialInfo(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<TrialInfo> {
        let identity = try context.requireIdentity()
        let (tenant, _) = try await checklist(of: identity.tenantUUID, logger: context.logger)
        let subscription: SubscriptionSummary
        do {
            subscription = try await self.subscription(of: tenant.id, logger: context.logger)
        } catch InternalCallError.rejected(_, 404, _) {
            throw AppError.notFound("This account has no subscription", code: "SUBSCRIPTION_NOT_FOUND")
        } catch let error as InternalCallError {
            throw error.publicError
        }
        let remaining = subscription.trialEndsAt.map { max(0, Int(($0.timeIntervalSinceNow / 86_400).rounded(.up))) } ?? 0
        return JSONResponse(
            TrialInfo(
                plan: subscription.plan, status: subscription.status, trialEndsAt: subscription.trialEndsAt,
                daysRemaining: Self.isTrialExpired(subscription) ? 0 : remaining, isExpired: Self.isTrialExpired(subscription)
            )
        )
    }

    /// The steps of a complete-step body: every key a step a person may mark, every value `true`.
    static func handMarkedSteps(_ body: [String: JSONValue]) throws -> [OnboardingStep] {
        var problems: [String: [String]] = [:]
        var steps: [OnboardingStep] = []
        // The suite's decoder turned the keys into camelCase; back to the names the client sent.
        for (key, value) in body {
            let field = JSONCoding.snakeCase(key)
            guard let step = OnboardingStep(rawValue: field) else {
                problems[field] = ["is not an onboarding step"]
                continue
            }
            if let completedBy = step.completedBy {
                problems[field] = ["completes by itself on \(completedBy); it cannot be marked by hand"]
            } else if value != .bool(true) {
                problems[field] = ["must be true (a completed step stays completed)"]
            } else {
                steps.append(step)
            }
        }
        if body.isEmpty { problems["step_widget_tested"] = ["name the step to mark as completed"] }
        guard problems.isEmpty else { throw AppError.validation(problems) }
        return steps
    }

    static func isTrialExpired(_ subscription: SubscriptionSummary) -> Bool {
        subscription.status == "trialing" && (subscription.trialEndsAt.map { $0 <= Date() } ?? false)
    }

    private func checklist(of tenantID: UUID, logger: Logger) async throws -> (Tenant, OnboardingProgressStore.Snapshot) {
        guard let (tenant, _) = try await tenants.find(id: tenantID, logger: logger),
            let snapshot = try await progress.read(tenantID: tenantID, logger: logger)
        else {
            throw AppError.notFound("No onboarding for this account", code: "TENANT_NOT_FOUND")
        }
        return (tenant, snapshot)
    }

    private func subscription(of tenantID: UUID, logger: Logger) async throws -> SubscriptionSummary {
        try await billing.send(.get, "/internal/subscriptions/\(tenantID.uuidString.lowercased())", as: SubscriptionSummary.self, logger: logger)
    }
}
