import Foundation
import HTTPTypes
import Hummingbird
import ServiceCore

/// Who may see or change what in tenancy (seed 000's roles, `user` < `admin` < `owner` < `super_admin`):
///
/// - a tenant's own configuration (`/api/admin/tenants/{id}/…`, widgets, branding, settings) is for
///   its admins and owners, and for super_admins on any tenant;
/// - a member of a tenant (any role) reads that tenant's profile;
/// - platform paths (listing, creating, suspending tenants, dashboard) are for super_admins.
///
/// Another tenant's id answers 404 exactly as an unknown one does, so ids cannot be probed; a
/// member without the role answers 403 `ROLE_NOT_ALLOWED`. Every handler asks here, not by itself.
enum TenantAccess {
    /// The tenant named by path parameter `parameter`, when the caller may manage it.
    static func managedTenant(_ context: AppRequestContext, parameter: String = "tenantID") throws -> UUID {
        let identity = try context.requireIdentity()
        let tenantID = try tenantParameter(context, parameter)
        try requireManager(of: tenantID, identity)
        return tenantID
    }

    /// The caller's own tenant, when the caller manages it (paths without a tenant id).
    static func ownManagedTenant(_ context: AppRequestContext) throws -> UUID {
        let identity = try context.requireIdentity()
        try requireManager(of: identity.tenantUUID, identity)
        return identity.tenantUUID
    }

    /// Admins and owners of `tenantID`, and super_admins.
    static func requireManager(of tenantID: UUID, _ identity: AccessTokenClaims) throws {
        if identity.role == .superAdmin { return }
        guard identity.tenantUUID == tenantID else { throw notFound }
        guard identity.role >= .admin else {
            throw notAllowed("Only the tenant's admins, owners and super_admins manage its configuration")
        }
    }

    /// Any member of `tenantID`, and super_admins.
    static func requireMember(of tenantID: UUID, _ identity: AccessTokenClaims) throws {
        guard identity.role == .superAdmin || identity.tenantUUID == tenantID else { throw notFound }
    }

    /// Platform administration.
    static func requireSuperAdmin(_ context: AppRequestContext) throws -> AccessTokenClaims {
        let identity = try context.requireIdentity()
        guard identity.role == .superAdmin else { throw notAllowed("Only super_admins administer the platform") }
        return identity
    }

    /// A tenant id from the path; anything that is not a UUID is a tenant that does not exist.
    static func tenantParameter(_ context: AppRequestContext, _ parameter: String = "tenantID") throws -> UUID {
        guard let raw = context.parameters.get(parameter), let id = UUID(uuidString: raw) else { throw notFound }
        return id
    }

    static let notFound = AppError.notFound("Tenant not found", code: "TENANT_NOT_FOUND")

    static func notAllowed(_ detail: String) -> AppError {
        AppError(.forbidden, code: "ROLE_NOT_ALLOWED", detail: detail)
    }
}
