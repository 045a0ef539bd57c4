import Foundation
import Hummingbird
import ServiceCore

/// What every admin listing reads from its query: `limit` (1-200, default 50), `offset` (0-1000000)
/// and `tenant_id`, which only a super_admin's listing obeys: everyone else sees their own tenant,
/// whatever they ask for. Problems are added to the caller's, to be answered together as 422.
struct ListingQuery: Sendable {
    var limit = 50
    var offset = 0
    /// The tenant to list; nil: every tenant (a super_admin without `tenant_id`).
    var tenant: UUID?

    init(_ request: Request, actor: Actor, problems: inout [String: [String]]) {
        let query = request.uri.queryParameters
        if let raw = query["limit"] {
            if let value = Int(String(raw)), (1...200).contains(value) { limit = value } else { problems["limit"] = ["must be 1 to 200"] }
        }
        if let raw = query["offset"] {
            if let value = Int(String(raw)), (0...1_000_000).contains(value) { offset = value } else { problems["offset"] = ["must be 0 to 1000000"] }
        }
        var asked: UUID?
        if let raw = query["tenant_id"] {
            asked = UUID(uuidString: String(raw))
            if asked == nil { problems["tenant_id"] = ["must be a tenant id"] }
        }
        tenant = actor.role == .superAdmin ? asked : actor.tenantID
    }
}
