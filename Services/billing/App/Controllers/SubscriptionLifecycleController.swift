import Foundation
import HTTPTypes
import Hummingbird
import Logging
import PostgresNIO
import ServiceCore

/// `POST /api/payments/cancel` and `POST /api/payments/change-plan`: the tenant's own moves.
///
/// Cancelling a paid-ahead subscription keeps it `active` (access included) until
/// `current_period_end`, when the scheduler cancels it; a trial or an unpaid subscription is
/// cancelled at once. Paying again reactivates either way. A downgrade is scheduled for the
/// period's end (the lower price is paid from the next period); an upgrade takes effect when it is
/// paid (`process-payment` / `create-preference` with the new plan: a new period starts at once),
/// so `change-plan` answers an upgrade with 402 `UPGRADE_REQUIRES_PAYMENT` and changes nothing.
///
/// A subscription Stripe bills (`stripe_subscriptions`) is cancelled at Stripe first
/// (`cancel_at_period_end=true`), so Stripe stops renewing it; if Stripe cannot be told, the answer
/// is 502/504 and nothing changes here.
struct SubscriptionLifecycleController: Sendable {
    let database: Database
    let ledger: SubscriptionLedger
    let catalog: PlanCatalog
    let clock: any BillingClock
    let verifier: AccessTokenVerifier
    /// nil without `STRIPE_SECRET_KEY`.
    var stripe: StripeClient? = nil

    struct CancelResponse: Codable, Sendable {
        var status: String
        var message: String
        var currentPeriodEnd: Date?
    }

    struct ChangePlanRequest: Decodable, Sendable { var plan: String? }

    struct ChangePlanResponse: Codable, Sendable {
        var plan: String
        var pendingPlan: String?
        var status: String
        var effectiveAt: Date?
        var message: String
    }

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        let signedIn = group.group().add(middleware: JWTAuthMiddleware(verifier: verifier))
        signedIn.post("cancel", use: cancel)
        signedIn.post("change-plan", use: changePlan)
    }

    @Sendable func cancel(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<CancelResponse> {
        let identity = try BillingAccess.manager(context)
        try await cancelAtStripe(tenantID: identity.tenantUUID, logger: context.logger)
        let now = clock.now()
        let logger = context.logger
        let ledger = ledger
        let answer: CancelResponse = try await database.transaction(logger: logger) { connection in
            try await SubscriptionLedger.lockTenant(identity.tenantUUID, on: connection, logger: logger)
            guard let current = try await ledger.load(identity.tenantUUID, on: connection, logger: logger) else {
                throw AppError.notFound("This account has no subscription", code: "SUBSCRIPTION_NOT_FOUND")
            }
            switch current.status {
            case .canceled:
                throw AppError.conflict("The subscription is already canceled", code: "SUBSCRIPTION_ALREADY_CANCELED")
            case .active, .pastDue:
                let end = current.currentPeriodEnd ?? now
                if !current.cancelAtPeriodEnd {
                    var updated = current
                    updated.cancelAtPeriodEnd = true
                    updated.pendingPlan = nil
                    try await ledger.record(.cancelRequested, from: current, to: updated, cause: .user, reference: identity.userID, at: now, on: connection, logger: logger)
                }
                return CancelResponse(status: "canceled", message: "The subscription is canceled; access continues until the end of the paid period", currentPeriodEnd: end)
            case .trialing, .incomplete:
                var updated = current
                updated.status = .canceled
                updated.canceledAt = now
                try await ledger.record(.cancelRequested, from: current, to: updated, cause: .user, reference: identity.userID, at: now, on: connection, logger: logger)
                return CancelResponse(status: "canceled", message: "The subscription is canceled", currentPeriodEnd: now)
            }
        }
        return JSONResponse(answer)
    }

    /// Tells Stripe to end the tenant's live Stripe subscription at its period's end, when it has one
    /// that is not already ending.
    private func cancelAtStripe(tenantID: UUID, logger: Logger) async throws {
        guard let subscriptionID = try await StripeRecurringEvents.liveSubscription(of: tenantID, in: database, logger: logger, unlessEnding: true)
        else { return }
        guard let stripe else {
            throw AppError.unavailable("This subscription is billed by Stripe, which this server cannot reach (no STRIPE_SECRET_KEY)", code: "STRIPE_NOT_CONFIGURED")
        }
        do {
            try await stripe.setCancelAtPeriodEnd(subscriptionID: subscriptionID, true, logger: logger)
        } catch let error as PaymentProviderError {
            throw ProviderFailure.appError(error)
        }
    }

    @Sendable func changePlan(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<ChangePlanResponse> {
        let identity = try BillingAccess.manager(context)
        let body = try await request.decodeJSON(as: ChangePlanRequest.self, context: context)
        var invalid: [String: [String]] = [:]
        guard let target = CheckoutController.plan(body.plan, in: catalog, invalid: &invalid) else { throw AppError.validation(invalid) }
        // Stripe bills by its own price: a change made here alone would be undone by the next invoice.
        guard try await StripeRecurringEvents.liveSubscription(of: identity.tenantUUID, in: database, logger: context.logger) == nil else {
            throw AppError.conflict(
                "This subscription is billed by Stripe: change its plan in the customer portal (POST /api/payments/portal)", code: "PLAN_MANAGED_BY_STRIPE"
            )
        }
        let now = clock.now()
        let logger = context.logger
        let ledger = ledger
        let catalog = catalog
        let answer: ChangePlanResponse = try await database.transaction(logger: logger) { connection in
            try await SubscriptionLedger.lockTenant(identity.tenantUUID, on: connection, logger: logger)
            guard let current = try await ledger.load(identity.tenantUUID, on: connection, logger: logger) else {
                throw AppError.notFound("This account has no subscription", code: "SUBSCRIPTION_NOT_FOUND")
            }
            guard current.status == .active, !current.cancelAtPeriodEnd else {
                throw AppError.conflict("Only an active subscription changes plan; pay for the plan you want instead", code: "SUBSCRIPTION_NOT_ACTIVE")
            }
            guard target.id != current.plan else { throw AppError.conflict("The subscription is already on this plan", code: "SAME_PLAN") }
            let currentPrice = catalog.plan(current.plan)?.price.minorUnits ?? 0
            guard target.price.minorUnits < currentPrice else {
                throw AppError(
                    HTTPResponse.Status(code: 402, reasonPhrase: "Payment Required"), code: "UPGRADE_REQUIRES_PAYMENT",
                    detail: "Upgrades take effect when paid: pay for the \(target.id) plan through process-payment or create-preference"
                )
            }
            var updated = current
            updated.pendingPlan = target.id
            try await ledger.record(.planChangeScheduled, from: current, to: updated, cause: .user, reference: target.id, at: now, on: connection, logger: logger)
            return ChangePlanResponse(
                plan: current.plan, pendingPlan: target.id, status: current.status.rawValue, effectiveAt: current.currentPeriodEnd,
                message: "The \(target.id) plan starts at the end of the current period"
            )
        }
        return JSONResponse(answer)
    }
}
