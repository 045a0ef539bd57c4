import Foundation
import HTTPTypes
import Hummingbird
import ServiceCore

/// `GET /api/admin/tenants/{id}/traces`: how each message of a tenant was answered (timing,
/// responder, retrieved chunks, words, errors), newest first, for the tenant's admins and owners
/// and for super_admins (see `ChatAccess`).
struct TracesController: Sendable {
    let access: ChatAccess
    let traces: any TraceRepository

    struct TraceList: Codable, Sendable {
        var traces: [TraceView]
        var total: Int
        var limit: Int
        var offset: Int
    }

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        group.get(":tenantID/traces", use: list)
    }

    @Sendable func list(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<TraceList> {
        let tenantID = try await access.managedTenant(request, context: context)
        var problems: [String: [String]] = [:]
        let paging = Paging(request, problems: &problems)
        guard problems.isEmpty else { throw AppError.validation(problems) }
        let page = try await traces.traces(tenantID: tenantID, limit: paging.limit, offset: paging.offset, logger: context.logger)
        return JSONResponse(TraceList(traces: page.items, total: page.total, limit: paging.limit, offset: paging.offset))
    }
}
