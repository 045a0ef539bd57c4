import Foundation
import HTTPTypes
import Hummingbird
import Logging
import PostgresNIO
import ServiceCore

/// `/api/payments/*`: the plan catalogue and payment configuration (public) and the caller's subscription.
struct PaymentsController: Sendable {
    let repository: any BillingRepository
    let verifier: AccessTokenVerifier
    let catalog: PlanCatalog
    let provider: any PaymentProvider
    let locale: String
    let clock: any BillingClock

    struct PlansResponse: Codable, Sendable {
        var plans: [Plan]
    }

    /// Seed 000's `PaymentConfig`, plus the provider and the currency.
    struct ConfigResponse: Codable, Sendable {
        var enabled: Bool
        var provider: String
        var publicKey: String?
        var isSandbox: Bool
        var locale: String
        var currency: String
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
        /// Cancelled for the period's end: stays `active` until `current_period_end`, then `canceled`.
        var cancelAtPeriodEnd: Bool
        /// The plan a scheduled downgrade moves to at `current_period_end`.
        var pendingPlan: String?
    }

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        group.get("plans", use: plans)
        group.get("plans/:planID", use: plan)
        group.get("config", use: config)
        group.group("subscription").add(middleware: JWTAuthMiddleware(verifier: verifier)).get(use: subscription)
    }

    @Sendable func plans(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<PlansResponse> {
        // From the `plans` table, which the configured catalogue is written to at start.
        JSONResponse(PlansResponse(plans: try await repository.publicPlans(logger: context.logger)), headers: [.cacheControl: "public, max-age=60"])
    }

    @Sendable func plan(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<Plan> {
        let id = context.parameters.get("planID")
        guard let plan = try await repository.publicPlans(logger: context.logger).first(where: { $0.id == id }) else {
            throw AppError.notFound("No such plan", code: "PLAN_NOT_FOUND")
        }
        return JSONResponse(plan, headers: [.cacheControl: "public, max-age=60"])
    }

    @Sendable func config(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<ConfigResponse> {
        JSONResponse(
            ConfigResponse(
                enabled: true, provider: provider.kind.rawValue, publicKey: provider.publicKey, isSandbox: provider.isTestMode, locale: locale,
                currency: catalog.currency
            ),
            headers: [.cacheControl: "public, max-age=60"]
        )
    }

    @Sendable func subscription(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<SubscriptionResponse> {
        let identity = try context.requireIdentity()
        guard let subscription = try await repository.subscription(tenantID: identity.tenantUUID, logger: context.logger) else {
            throw AppError.notFound("This account has no subscription", code: "SUBSCRIPTION_NOT_FOUND")
        }
        return JSONResponse(Self.describe(subscription, now: clock.now()))
    }

    static func describe(_ subscription: Subscription, now: Date) -> SubscriptionResponse {
        let trialExpired = subscription.status == "trialing" && (subscription.trialEndsAt.map { $0 <= now } ?? false)
        let end = subscription.status == "trialing" ? subscription.trialEndsAt : subscription.currentPeriodEnd
        let daysRemaining = end.map { max(0, Int((($0.timeIntervalSince(now)) / 86_400).rounded(.up))) }
        return SubscriptionResponse(
            plan: subscription.plan, status: subscription.status, trialEndsAt: subscription.trialEndsAt,
            currentPeriodStart: subscription.currentPeriodStart, currentPeriodEnd: subscription.currentPeriodEnd,
            isTrialExpired: trialExpired, daysRemaining: daysRemaining, monthlyMessageQuota: subscription.monthlyMessageQuota,
            cancelAtPeriodEnd: subscription.cancelAtPeriodEnd, pendingPlan: subscription.pendingPlan
        )
    }
}
