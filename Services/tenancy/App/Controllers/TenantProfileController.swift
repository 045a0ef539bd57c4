import Foundation
import HTTPTypes
import Hummingbird
import InternalAPI
import Logging
import ServiceCore

/// `GET /api/tenant/profile` (any member of the caller's tenant) and `PUT /api/tenant/settings`
/// (its admins and owners): seed 004's tenant profile and settings, for the caller's own tenant.
struct TenantProfileController: Sendable {
    let tenants: any TenantRepository
    let settings: TenantSettingsRepository
    let billing: InternalClient

    struct Profile: Encodable, Sendable {
        struct Subscription: Encodable, Sendable {
            var planId: String
            var status: String
            var trialEndsAt: Date?
            var currentPeriodEnd: Date?
            var monthlyMessageQuota: Int
        }

        var tenantId: String
        var name: String
        var slug: String
        var status: String
        var settings: TenantSettings.View
        /// From billing; absent when billing cannot answer right now.
        var subscription: Subscription?
        var createdAt: Date
        /// When the settings last changed; absent while every setting is a default.
        var updatedAt: Date?
    }

    struct SettingsView: Encodable, Sendable {
        var tenantId: String
        var settings: TenantSettings.View
        var updatedAt: Date?
    }

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        group.get("profile", use: profile)
        group.put("settings", use: update)
    }

    @Sendable func profile(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<Profile> {
        let identity = try context.requireIdentity()
        try TenantAccess.requireMember(of: identity.tenantUUID, identity)
        guard let (tenant, _) = try await tenants.find(id: identity.tenantUUID, logger: context.logger),
            let current = try await settings.find(tenantID: tenant.id, allowSignup: tenant.allowSignup, logger: context.logger)
        else { throw TenantAccess.notFound }
        return JSONResponse(
            Profile(
                tenantId: tenant.id.uuidString.lowercased(), name: tenant.name, slug: tenant.slug, status: tenant.status,
                settings: current.settings.view(allowSignup: current.allowSignup),
                subscription: await subscription(of: tenant.id, context: context), createdAt: tenant.createdAt, updatedAt: current.updatedAt
            )
        )
    }

    @Sendable func update(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<SettingsView> {
        let tenantID = try TenantAccess.ownManagedTenant(context)
        let (patch, allowSignup) = try await request.decodeJSON(as: TenantSettings.Update.self, context: context).validated()
        guard let current = try await settings.update(tenantID: tenantID, patch: patch, allowSignup: allowSignup, logger: context.logger) else {
            throw TenantAccess.notFound
        }
        context.logger.info("tenant settings changed", metadata: ["tenant_id": "\(tenantID)", "allow_signup": "\(current.allowSignup)"])
        return JSONResponse(
            SettingsView(
                tenantId: tenantID.uuidString.lowercased(), settings: current.settings.view(allowSignup: current.allowSignup),
                updatedAt: current.updatedAt
            )
        )
    }

    /// The profile still answers when billing cannot: without its subscription part.
    private func subscription(of tenantID: UUID, context: AppRequestContext) async -> Profile.Subscription? {
        do {
            let summary = try await billing.send(
                .get, "/internal/subscriptions/\(tenantID.uuidString.lowercased())", as: SubscriptionSummary.self, logger: context.logger
            )
            return Profile.Subscription(
                planId: summary.plan, status: summary.status, trialEndsAt: summary.trialEndsAt, currentPeriodEnd: summary.currentPeriodEnd,
                monthlyMessageQuota: summary.monthlyMessageQuota
            )
        } catch {
            context.logger.warning("profile without subscription: billing did not answer", metadata: ["error": "\(error)"])
            return nil
        }
    }
}
