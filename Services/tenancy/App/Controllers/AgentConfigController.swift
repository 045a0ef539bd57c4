import Foundation
import HTTPTypes
import Hummingbird
import InternalAPI
import Logging
import ServiceCore

/// `GET/PUT /api/admin/tenants/{tenant_id}/agent-config` (the tenant's admins, owners and
/// super_admins; only super_admins choose the model), and `GET /internal/agent-configs/{tenant_id}`,
/// which chat reads (and caches briefly) to greet and answer as the tenant configured.
struct AgentConfigController: Sendable {
    let agents: any AgentConfigRepository

    func addRoutes(admin: RouterGroup<AppRequestContext>, service: RouterGroup<AppRequestContext>) {
        admin.get(":tenantID/agent-config", use: show)
        admin.put(":tenantID/agent-config", use: update)
        service.get("agent-configs/:tenantID", use: forService)
    }

    @Sendable func show(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<AgentConfiguration> {
        let tenantID = try TenantAccess.managedTenant(context)
        guard let agent = try await agents.find(tenantID: tenantID, logger: context.logger) else { throw TenantAccess.notFound }
        return JSONResponse(agent)
    }

    @Sendable func update(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<AgentConfiguration> {
        let tenantID = try TenantAccess.managedTenant(context)
        let identity = try context.requireIdentity()
        let change = try await request.decodeJSON(as: AgentConfigUpdate.self, context: context).validated()
        switch try await agents.update(tenantID: tenantID, change: change, mayChooseModel: identity.role == .superAdmin, logger: context.logger) {
        case .updated(let agent):
            context.logger.info("agent configured", metadata: ["tenant_id": "\(tenantID)", "by": "\(identity.userID)"])
            return JSONResponse(agent)
        case .notFound:
            throw TenantAccess.notFound
        case .modelNotAllowed:
            throw TenantAccess.notAllowed("Only super_admins choose the model")
        }
    }

    @Sendable func forService(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<AgentConfiguration> {
        let tenantID = try TenantAccess.tenantParameter(context)
        guard let agent = try await agents.find(tenantID: tenantID, logger: context.logger) else { throw TenantAccess.notFound }
        return JSONResponse(agent)
    }
}
