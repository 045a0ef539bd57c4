import Foundation
import HTTPTypes
import Logging
import PostgresNIO
import ServiceCore

/// The caller of a user-management request, from their access token.
struct Actor: Sendable {
    var id: UUID
    var tenantID: UUID
    var role: Role

    init(_ claims: AccessTokenClaims) {
        self.id = claims.userUUID
        self.tenantID = claims.tenantUUID
        self.role = claims.role
    }
}

/// `active` users have confirmed their email; `unverified` ones not yet.
enum UserStatus: String, Sendable, CaseIterable {
    case active
    case unverified
}

struct UserFilter: Sendable {
    /// nil: every tenant (super_admin only).
    var tenant: UUID?
    var role: Role?
    var status: UserStatus?
    var limit: Int
    var offset: Int
}

/// Listing, role changes, deletion, profile and password of users, with the role rules applied
/// inside the transaction that makes the change (so two owners demoting each other at once cannot
/// leave a tenant without one).
protocol UserAdministration: Sendable {
    func list(_ filter: UserFilter, logger: Logger) async throws -> (users: [UserRecord], total: Int)
    func changeRole(of target: UUID, to role: Role, by actor: Actor, logger: Logger) async throws -> UserRecord
    func delete(_ target: UUID, by actor: Actor, logger: Logger) async throws
    func updateProfile(of user: UUID, fullName: String?, logger: Logger) async throws -> UserRecord?
    /// Stores the new hash, voids every older token and ends every other session; returns the user
    /// as now stored (with its new token version).
    func changePassword(of user: UUID, to hash: String, keeping session: UUID?, logger: Logger) async throws -> UserRecord?
}

struct PostgresUserAdministration: UserAdministration {
    let client: Database
    /// How long a revocation must be kept: the access tokens' life.
    let accessLifetime: Duration

    private static let selectUser = PostgresUserRepository.selectUser

    func list(_ filter: UserFilter, logger: Logger) async throws -> (users: [UserRecord], total: Int) {
        // The same filter for the page and the count, bound by position.
        func filtered(_ head: String, _ tail: String) -> PostgresQuery {
            var binds = PostgresBindings()
            binds.append(filter.tenant)
            binds.append(filter.role?.rawValue)
            binds.append(filter.status.map { $0 == .active })
            let sql = head + """
                 WHERE u.deleted_at IS NULL AND ($1::uuid IS NULL OR u.tenant_id = $1)
                AND ($2::text IS NULL OR u.role = $2)
                AND ($3::bool IS NULL OR (u.email_verified_at IS NOT NULL) = $3)
                """ + " " + tail
            return PostgresQuery(unsafeSQL: sql, binds: binds)
        }
        let rows = try await client.query(
            filtered(Self.selectUser, "ORDER BY u.created_at, u.id LIMIT \(filter.limit) OFFSET \(filter.offset)"), logger: logger
        )
        let total = try await client.query(filtered("SELECT count(*)::int FROM users u", ""), logger: logger)
        return (try rows.rows.map(PostgresUserRepository.user(from:)), try total.decode(Int.self).first ?? 0)
    }

    func changeRole(of target: UUID, to role: Role, by actor: Actor, logger: Logger) async throws -> UserRecord {
        try await client.transaction(logger: logger) { connection in
            let user = try await lockTarget(target, for: actor, new: role, on: connection, logger: logger)
            guard user.role != role else { return user }
            try await connection.query("UPDATE users SET role = \(role.rawValue), updated_at = now() WHERE id = \(target)", logger: logger)
            // Tokens naming the old role stop working; the sessions stay, and a refresh carries the new role.
            let version = try await RevocationLog.voidTokens(
                of: target, reason: "role_changed", accessLifetime: accessLifetime, sessionsToo: false, on: connection, logger: logger
            )
            var changed = user
            changed.role = role
            changed.tokenVersion = version
            return changed
        }
    }

    func delete(_ target: UUID, by actor: Actor, logger: Logger) async throws {
        try await client.transaction(logger: logger) { connection in
            _ = try await lockTarget(target, for: actor, new: nil, on: connection, logger: logger)
            try await connection.query("UPDATE users SET deleted_at = now(), updated_at = now() WHERE id = \(target)", logger: logger)
            try await RevocationLog.voidTokens(
                of: target, version: RevocationLog.deletedUserVersion, reason: "user_deleted", accessLifetime: accessLifetime, on: connection,
                logger: logger
            )
        }
    }

    func updateProfile(of user: UUID, fullName: String?, logger: Logger) async throws -> UserRecord? {
        let rows = try await client.query(
            """
            WITH u AS (UPDATE users SET full_name = \(fullName), updated_at = now() WHERE id = \(user) AND deleted_at IS NULL RETURNING *)
            SELECT \(unescaped: PostgresUserRepository.userColumns) FROM u JOIN tenant_directory t ON t.tenant_id = u.tenant_id
            """,
            logger: logger
        )
        return try rows.rows.first.map(PostgresUserRepository.user(from:))
    }

    func changePassword(of user: UUID, to hash: String, keeping session: UUID?, logger: Logger) async throws -> UserRecord? {
        try await client.transaction(logger: logger) { connection in
            let updated = try await connection.query(
                "UPDATE users SET password_hash = \(hash), updated_at = now() WHERE id = \(user) AND deleted_at IS NULL RETURNING id",
                logger: logger
            ).collect()
            guard !updated.isEmpty else { return nil }
            try await RevocationLog.voidTokens(
                of: user, reason: "password_changed", keeping: session, accessLifetime: accessLifetime, on: connection, logger: logger
            )
            return try await PostgresUserRepository.user(id: user, on: connection, logger: logger)
        }
    }

    /// The target, locked, after the role rules and the tenant boundary; the tenant's owners are
    /// locked too when the change could leave it without one.
    private func lockTarget(_ target: UUID, for actor: Actor, new: Role?, on connection: PostgresConnection, logger: Logger) async throws -> UserRecord {
        // Changes to one tenant's users take turns: two owners demoting each other at once would
        // otherwise each lock their target, then wait for the other's row to count the owners.
        try await connection.query(
            "SELECT pg_advisory_xact_lock(\(Self.tenantLockSpace), hashtext(tenant_id::text)) FROM users WHERE id = \(target)",
            logger: logger
        )
        let everyTenant = actor.role == .superAdmin
        let rows = try await connection.query(
            """
            \(unescaped: Self.selectUser)
            WHERE u.id = \(target) AND u.deleted_at IS NULL AND (\(everyTenant) OR u.tenant_id = \(actor.tenantID))
            FOR UPDATE OF u
            """,
            logger: logger
        ).collect()
        // Another tenant's user is as unknown as a user that never existed.
        guard let user = try rows.first.map(PostgresUserRepository.user(from:)) else { throw Self.notFound }
        if let refusal = RoleRules.refusal(actor: actor.role, current: user.role, new: new) {
            throw RoleRules.notAllowed(refusal)
        }
        if user.role == .owner, new != .owner {
            let owners = try await connection.query(
                "SELECT id FROM users WHERE tenant_id = \(user.tenantID) AND role = 'owner' AND deleted_at IS NULL FOR UPDATE",
                logger: logger
            ).collect()
            guard owners.count > 1 else {
                throw AppError.conflict("A tenant keeps at least one owner; make someone else owner first", code: "LAST_OWNER")
            }
        }
        return user
    }

    static let notFound = AppError(.notFound, code: "USER_NOT_FOUND", detail: "User not found")

    /// The first key of the per-tenant advisory locks (the second is a hash of the tenant id).
    private static let tenantLockSpace: Int32 = 0x5553_4552
}
