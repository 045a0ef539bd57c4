import Foundation
import Hummingbird
import InternalAPI
import ServiceCore

/// `/internal/tenants/*`: tenant facts for chat, auth (sign-up, suspension) and the gateway.
struct InternalTenantsController: Sendable {
    let tenants: any TenantRepository

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        group.get("tenants/by-slug/:slug", use: bySlug)
        group.get("tenants/:tenantID", use: byID)
    }

    @Sendable func bySlug(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<TenantSummary> {
        let slug = try context.parameters.require("slug")
        guard Slug.isValid(slug), let found = try await tenants.find(slug: slug, logger: context.logger) else {
            throw AppError.notFound("Unknown tenant", code: "TENANT_NOT_FOUND")
        }
        return JSONResponse(Self.summary(found))
    }

    @Sendable func byID(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<TenantSummary> {
        let id = try context.parameters.require("tenantID", as: UUID.self)
        guard let found = try await tenants.find(id: id, logger: context.logger) else {
            throw AppError.notFound("Unknown tenant", code: "TENANT_NOT_FOUND")
        }
        return JSONResponse(Self.summary(found))
    }

    static func summary(_ found: (Tenant, AgentConfig)) -> TenantSummary {
        let (tenant, agent) = found
        return TenantSummary(
            id: tenant.id, name: tenant.name, slug: tenant.slug, status: tenant.status,
            rateLimitPerMinute: tenant.rateLimitPerMinute, agentName: agent.agentName, greetingMessage: agent.greetingMessage,
            allowSignup: tenant.allowSignup, allowedOrigins: tenant.allowedOrigins, language: tenant.language
        )
    }
}
