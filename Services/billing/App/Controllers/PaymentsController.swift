import Foundation
import Hummingbird
import ServiceCore

/// `/api/payments/*`: the plan catalogue (public) and the caller's subscription.
struct PaymentsController: Sendable {
    let repository: any BillingRepository
    let verifier: AccessTokenVerifier

    struct PlansResponse: Codable, Sendable {
        var plans: [Plan]
    }

    struct SubscriptionResponse: Codable, Sendable {
        var plan: String
        var status: String
        var trialEndsAt: Date?
        var currentPeriodStart: Date?
        var currentPeriodEnd: Date?
        var isTrialExpired: Bool
        var daysRemaining: Int?
        var monthlyMessageQuota: Int
    }

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        group.get("plans", use: plans)
        group.group("subscription").add(middleware: JWTAuthMiddleware(verifier: verifier)).get(use: subscription)
    }

    @Sendable func plans(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<PlansResponse> {
        JSONResponse(PlansResponse(plans: try await repository.publicPlans(logger: context.logger)), headers: [.cacheControl: "public, max-age=60"])
    }

    @Sendable func subscription(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<SubscriptionResponse> {
        let identity = try context.requireIdentity()
        guard let subscription = try await repository.subscription(tenantID: identity.tenantUUID, logger: context.logger) else {
            throw AppError.notFound("This account has no subscription", code: "SUBSCRIPTION_NOT_FOUND")
        }
        return JSONResponse(Self.describe(subscription, now: Date()))
    }

    static func describe(_ subscription: Subscription, now: Date) -> SubscriptionResponse {
        let trialExpired = subscription.status == "trialing" && (subscription.trialEndsAt.map { $0 <= now } ?? false)
        let end = subscription.status == "trialing" ? subscription.trialEndsAt : subscription.currentPeriodEnd
        let daysRemaining = end.map { max(0, Int((($0.timeIntervalSince(now)) / 86_400).rounded(.up))) }
        return SubscriptionResponse(
            plan: subscription.plan, status: subscription.status, trialEndsAt: subscription.trialEndsAt,
            currentPeriodStart: subscription.currentPeriodStart, currentPeriodEnd: subscription.currentPeriodEnd,
            isTrialExpired: trialExpired, daysRemaining: daysRemaining, monthlyMessageQuota: subscription.monthlyMessageQuota
        )
    }
}
