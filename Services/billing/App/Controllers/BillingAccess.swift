import Foundation
import HTTPTypes
import Hummingbird
import Logging
import PostgresNIO
import ServiceCore

/// Who may do what with a tenant's billing: any member reads its subscription, payments and
/// invoices; its owners and admins pay, cancel, change plans and refund; super_admins mark a
/// tenant paid by hand. Every handler asks here.
enum BillingAccess {
    /// The caller's tenant, when the caller is its owner or admin (or a super_admin).
    static func manager(_ context: AppRequestContext) throws -> AccessTokenClaims {
        let identity = try context.requireIdentity()
        guard identity.role >= .admin else {
            throw AppError(.forbidden, code: "ROLE_NOT_ALLOWED", detail: "Only the account's owners and admins manage its billing")
        }
        return identity
    }

    static func superAdmin(_ context: AppRequestContext) throws -> AccessTokenClaims {
        let identity = try context.requireIdentity()
        guard identity.role == .superAdmin else {
            throw AppError(.forbidden, code: "ROLE_NOT_ALLOWED", detail: "Only super_admins mark payments by hand")
        }
        return identity
    }
}
