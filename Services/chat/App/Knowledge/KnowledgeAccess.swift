import Foundation
import Hummingbird
import HTTPTypes
import ServiceCore

/// Whose knowledge base a request works on: a tenant's admins and owners their own; super_admins
/// any tenant, named by the `tenant_id` query parameter (their own tenant without it). Members
/// without the role answer 403; a `tenant_id` that is not a UUID is a tenant that does not exist.
enum KnowledgeAccess {
    static func tenant(_ request: Request, _ context: AppRequestContext) throws -> UUID {
        let identity = try context.requireIdentity()
        if identity.role == .superAdmin {
            guard let raw = request.uri.queryParameters["tenant_id"] else { return identity.tenantUUID }
            guard let id = UUID(uuidString: String(raw)) else { throw AppError.notFound("Tenant not found", code: "TENANT_NOT_FOUND") }
            return id
        }
        guard identity.role >= .admin else {
            throw AppError(.forbidden, code: "ROLE_NOT_ALLOWED", detail: "Only the tenant's admins, owners and super_admins manage its knowledge base")
        }
        return identity.tenantUUID
    }
}
