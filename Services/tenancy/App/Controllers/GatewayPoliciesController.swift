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

    /// `changed_since` (Unix µs, default 0) and `after` (a tenant id, default the nil UUID) say
    /// where the last page ended; `limit` is 1...1000 (default 500).
    @Sendable func policies(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<TenantPolicyPage> {
        let query = request.uri.queryParameters
        var problems: [String: [String]] = [:]
        let since = query["changed_since"].map { Int64(String($0)) } ?? 0
        if since == nil || since! < 0 { problems["changed_since", default: []].append("must be Unix microseconds, 0 or more") }
        let after = query["after"].map { UUID(uuidString: String($0)) } ?? UUID(uuidString: TenantPolicyCursor.noTenant)!
        if after == nil { problems["after", default: []].append("must be a tenant id") }
        let limit = query["limit"].map { Int(String($0)) } ?? 500
        if limit == nil || !(1...1_000).contains(limit!) { problems["limit", default: []].append("must be 1 to 1000") }
        guard problems.isEmpty, let since, let after, let limit else { throw AppError.validation(problems) }
        let policies = try await tenants.policies(
            changedAfter: Date(timeIntervalSince1970: Double(since) / 1_000_000), id: after, limit: limit, logger: context.logger
        )
        let next = policies.count == limit
            ? policies.last.map { TenantPolicyCursor(changedSince: $0.updatedAtMicroseconds, after: $0.tenantId) }
            : nil
        return JSONResponse(TenantPolicyPage(policies: policies, next: next))
    }
}
