import Foundation
import Hummingbird
import InternalAPI
import ServiceCore

/// `/internal/gateway/tenant-policies`: each tenant's status and rate limit, as a change feed the
/// gateway follows. Only the gateway may call it (`RequireCaller`, by its own key), not every holder
/// of the shared service secret.
struct GatewayPoliciesController: Sendable {
    let tenants: any TenantRepository

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        group.get("tenant-policies", use: policies)
    }

    /// A page of the feed; `after` is the id of the last tenant of the previous page.
    @Sendable func policies(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<TenantPolicyPage> {
        let query = try FeedQuery(request, keyProblem: "must be a tenant id") { UUID(uuidString: $0) != nil }
        let after = query.after.flatMap(UUID.init(uuidString:)) ?? UUID(uuidString: FeedCursor.noTenant)!
        let policies = try await tenants.policies(changedAfter: query.changedSince, id: after, limit: query.limit, logger: context.logger)
        let next = policies.count == query.limit
            ? policies.last.map { FeedCursor(changedSince: $0.updatedAtMicroseconds, after: $0.tenantId) }
            : nil
        return JSONResponse(TenantPolicyPage(policies: policies, next: next))
    }
}
