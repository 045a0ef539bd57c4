import Foundation
import Hummingbird
import ServiceCore

/// What every admin listing reads from its query: the page (`Paging`: `limit`, `offset`) and
/// `tenant_id`, which only a super_admin's listing obeys: everyone else sees their own tenant,
/// whatever they ask for. Problems are added to the caller's, to be answered together as 422.
struct ListingQuery: Sendable {
    let paging: Paging
    /// The tenant to list; nil: every tenant (a super_admin without `tenant_id`).
    var tenant: UUID?

    var limit: Int { paging.limit }
    var offset: Int { paging.offset }

    init(_ request: Request, actor: Actor, problems: inout [String: [String]]) {
        paging = Paging(request, problems: &problems)
        let query = request.uri.queryParameters
        var asked: UUID?
        if let raw = query["tenant_id"] {
            asked = UUID(uuidString: String(raw))
            if asked == nil { problems["tenant_id"] = ["must be a tenant id"] }
        }
        tenant = actor.role == .superAdmin ? asked : actor.tenantID
    }
}
