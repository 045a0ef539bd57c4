import Foundation
import HTTPTypes
import Logging
import ServiceCore

/// Makes the first super_admin at start, from `SUPER_ADMIN_EMAIL` and `SUPER_ADMIN_PASSWORD`, when
/// no live account has that email: idempotent, and safe with several replicas starting at once (the
/// unique email decides). An existing account is never changed: not its password, not its role.
struct SuperAdminBootstrap: Sendable {
    /// The platform's own directory entry: super_admins belong to no customer tenant.
    static let platformTenantID = UUID(uuidString: "00000000-0000-0000-0000-000000000001")!
    /// Not a slug tenancy can give (an underscore), so no customer's tenant can ever collide with it.
    static let platformTenantSlug = "_platform"

    let users: any UserRepository
    let hasher: PasswordHasher

    func ensure(email: String, password: String, logger: Logger) async throws {
        if let existing = try await users.find(email: email, logger: logger), existing.deletedAt == nil {
            if existing.role != .superAdmin {
                logger.warning("SUPER_ADMIN_EMAIL belongs to an account that is not a super_admin; left as it is", metadata: ["role": "\(existing.role.rawValue)"])
            }
            return
        }
        let hash = try await hasher.hash(password)
        do {
            let user = try await users.create(
                NewUser(
                    tenantID: Self.platformTenantID, tenantName: "Platform", tenantSlug: Self.platformTenantSlug, email: email, passwordHash: hash,
                    fullName: nil, role: .superAdmin
                ),
                logger: logger
            )
            logger.notice("super_admin created from SUPER_ADMIN_EMAIL", metadata: ["user_id": "\(user.id)"])
        } catch let error as AppError where error.status == .conflict {
            // Another replica made it first.
        }
    }
}
