import Foundation
import HTTPTypes
import Hummingbird
import ServiceCore

/// Whose knowledge base a request works on: a tenant's admins and owners their own; super_admins
/// any tenant, named by `tenant_id` (the query parameter on seed 000's routes, the form or body
/// field on seed 001's `/api/admin/knowledge/*`; their own tenant without it). Members without the
/// role answer 403. A `tenant_id` that is not a UUID, or (for anyone but a super_admin) names
/// another tenant, is a tenant that does not exist: 404.
enum KnowledgeAccess {
    static func tenant(_ request: Request, _ context: AppRequestContext) throws -> UUID {
        try tenant(named: request.uri.queryParameters["tenant_id"].map(String.init), identity: manager(context))
    }

    /// The caller, when they may manage a knowledge base at all (before anything else is read).
    static func manager(_ context: AppRequestContext) throws -> AccessTokenClaims {
        let identity = try context.requireIdentity()
        if identity.role != .superAdmin, identity.role < .admin {
            throw AppError(.forbidden, code: "ROLE_NOT_ALLOWED", detail: "Only the tenant's admins, owners and super_admins manage its knowledge base")
        }
        return identity
    }

    /// The tenant `raw` names for `identity` (a manager), or the caller's own when it names none.
    static func tenant(named raw: String?, identity: AccessTokenClaims) throws -> UUID {
        guard let raw else { return identity.tenantUUID }
        guard let named = UUID(uuidString: raw), identity.role == .superAdmin || named == identity.tenantUUID else {
            throw AppError.notFound("Tenant not found", code: "TENANT_NOT_FOUND")
        }
        return named
    }
}
