import Foundation
import Hummingbird
import InternalAPI
import Logging
import ServiceCore

/// `/internal/subscriptions`: trials for new tenants, lookups for other services, undo for failed sign-ups.
struct InternalSubscriptionsController: Sendable {
    let repository: any BillingRepository
    let trialDays: Int

    /// - Parameters:
    ///   - provisioning: starting and removing trials (tenancy's registration).
    ///   - lookups: reading a tenant's subscription (entitlement checks).
    func addRoutes(provisioning: RouterGroup<AppRequestContext>, lookups: RouterGroup<AppRequestContext>) {
        provisioning.post("subscriptions", use: startTrial)
        lookups.get("subscriptions/:tenantID", use: show)
        provisioning.delete("subscriptions/:tenantID", use: delete)
    }

    @Sendable func startTrial(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<SubscriptionSummary> {
        let input = try await request.decodeJSON(as: StartTrialRequest.self, context: context)
        let endsAt = Date().addingTimeInterval(TimeInterval(trialDays) * 86_400)
        let (subscription, created) = try await repository.startTrial(tenantID: input.tenantId, endsAt: endsAt, logger: context.logger)
        if created {
            context.logger.info("trial started", metadata: ["tenant_id": "\(input.tenantId)", "ends_at": "\(endsAt)"])
        }
        return JSONResponse(Self.summary(subscription), status: created ? .created : .ok)
    }

    @Sendable func show(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<SubscriptionSummary> {
        let tenantID = try context.parameters.require("tenantID", as: UUID.self)
        guard let subscription = try await repository.subscription(tenantID: tenantID, logger: context.logger) else {
            throw AppError.notFound("No subscription for this tenant", code: "SUBSCRIPTION_NOT_FOUND")
        }
        return JSONResponse(Self.summary(subscription))
    }

    @Sendable func delete(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantID = try context.parameters.require("tenantID", as: UUID.self)
        try await repository.deleteSubscription(tenantID: tenantID, logger: context.logger)
        return Response(status: .noContent)
    }

    static func summary(_ subscription: Subscription) -> SubscriptionSummary {
        SubscriptionSummary(
            tenantId: subscription.tenantID, plan: subscription.plan, status: subscription.status,
            trialEndsAt: subscription.trialEndsAt, currentPeriodEnd: subscription.currentPeriodEnd,
            monthlyMessageQuota: subscription.monthlyMessageQuota
        )
    }
}
