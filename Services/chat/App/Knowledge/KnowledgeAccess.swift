import Foundation
import HTTPTypes
import Hummingbird
import ServiceCore

/// Whose knowledge base a request works on: a tenant's admins and owners their own; super_admins
/// any tenant, named by the `tenant_id` query parameter (their own tenant without it). Members
/// without the role answer 403. A `tenant_id` that is not a UUID, or (for anyone but a super_admin)
/// names another tenant, is a tenant that does not exist: 404.
enum KnowledgeAccess {
    static func tenant(_ request: Request, _ context: AppRequestContext) throws -> UUID {
        let identity = try context.requireIdentity()
        if identity.role != .superAdmin, identity.role < .admin {
            throw AppError(.forbidden, code: "ROLE_NOT_ALLOWED", detail: "Only the tenant's admins, owners and super_admins manage its knowledge base")
        }
        guard let raw = request.uri.queryParameters["tenant_id"] else { return identity.tenantUUID }
        guard let named = UUID(uuidString: String(raw)), identity.role == .superAdmin || named == identity.tenantUUID else {
            throw AppError.notFound("Tenant not found", code: "TENANT_NOT_FOUND")
        }
        return named
    }
}
