import Foundation
import HTTPTypes
import Hummingbird
import InternalAPI
import Logging
import PostgresNIO
import ServiceCore

/// Quotas and plan-gated features: `GET /internal/entitlements/{tenant_id}` (chat before each
/// message, tenancy), `GET /api/payments/usage` (a tenant's own), and the `chat.message_answered`
/// events that feed the usage counters.
struct EntitlementsController: Sendable {
    let subscriptions: any BillingRepository
    let usage: any UsageRepository
    let verifier: AccessTokenVerifier
    /// Injectable so tests move time without sleeping.
    let now: @Sendable () -> Date

    /// What `GET /api/payments/usage` answers.
    struct UsageResponse: Codable, Sendable, Equatable {
        var plan: String
        var status: String
        var isTrialExpired: Bool
        var monthlyQuota: Int
        var used: Int
        var remaining: Int
        var periodStart: Date
        var periodEnd: Date
        var chatAllowed: Bool
        var reason: String?
        var features: TenantEntitlement.Features
    }

    /// - Parameters:
    ///   - lookups: the internal group of the services that ask (chat, tenancy).
    ///   - payments: `api/payments`.
    func addRoutes(lookups: RouterGroup<AppRequestContext>, payments: RouterGroup<AppRequestContext>) {
        lookups.get("entitlements/:tenantID", use: entitlement)
        payments.group("usage").add(middleware: JWTAuthMiddleware(verifier: verifier)).get(use: ownUsage)
    }

    /// The event handlers billing's `EventReceiver` runs, by type.
    func eventHandlers() -> [EventType: EventReceiver.Handler] {
        let usage = self.usage
        return [
            MessageAnswered.type: { event, connection, logger in
                let message = try event.decodePayload(as: MessageAnswered.self)
                try await usage.count(message, on: connection, logger: logger)
            }
        ]
    }

    @Sendable func entitlement(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<TenantEntitlement> {
        let tenantID = try context.parameters.require("tenantID", as: UUID.self)
        return JSONResponse(try await evaluate(tenantID: tenantID, logger: context.logger))
    }

    @Sendable func ownUsage(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<UsageResponse> {
        let identity = try context.requireIdentity()
        let entitlement = try await evaluate(tenantID: identity.tenantUUID, logger: context.logger)
        return JSONResponse(
            UsageResponse(
                plan: entitlement.plan, status: entitlement.status, isTrialExpired: entitlement.isTrialExpired,
                monthlyQuota: entitlement.monthlyQuota, used: entitlement.used, remaining: max(0, entitlement.monthlyQuota - entitlement.used),
                periodStart: entitlement.periodStart, periodEnd: entitlement.periodEnd, chatAllowed: entitlement.chatAllowed,
                reason: entitlement.reason, features: entitlement.features
            ),
            headers: [.cacheControl: "no-store"]
        )
    }

    private func evaluate(tenantID: UUID, logger: Logger) async throws -> TenantEntitlement {
        guard let subscription = try await subscriptions.subscription(tenantID: tenantID, logger: logger) else {
            throw AppError.notFound("No subscription for this tenant", code: "SUBSCRIPTION_NOT_FOUND")
        }
        let now = self.now()
        let period = UsagePeriod.holding(now, subscription: UsagePeriod.Facts(subscription))
        let used = try await usage.used(tenantID: tenantID, period: period, logger: logger)
        return Entitlement.evaluate(subscription, used: used, period: period, now: now)
    }
}
