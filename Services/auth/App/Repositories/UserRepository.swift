import Foundation
import Logging
import PostgresNIO
import ServiceCore

/// A dashboard user with the tenant facts auth keeps a copy of.
struct UserRecord: Sendable {
    var id: UUID
    var tenantID: UUID
    var email: String
    var passwordHash: String
    var role: Role
    var fullName: String?
    var tenantName: String
    var tenantSlug: String
    var createdAt: Date
    /// Access tokens minted with a lower version are void (`ver` claim).
    var tokenVersion: Int
    var emailVerifiedAt: Date?
    var deletedAt: Date?
    var lastLoginAt: Date?
}

/// A new user of a tenant (the owner of a new tenant, or someone signing up), password already hashed.
struct NewUser: Sendable {
    var tenantID: UUID
    var tenantName: String
    var tenantSlug: String
    var email: String
    var passwordHash: String
    var fullName: String?
    var role: Role
}

protocol UserRepository: Sendable {
    /// Creates (or refreshes) the tenant's directory entry and the user; 409 when the email is taken.
    func create(_ user: NewUser, logger: Logger) async throws -> UserRecord
    /// The live account with this email, or else the most recently deleted one.
    func find(email: String, logger: Logger) async throws -> UserRecord?
    /// A live (not deleted) user.
    func find(id: UUID, logger: Logger) async throws -> UserRecord?
    /// Removes a tenant's users and directory entry; returns how many users went.
    func deleteTenant(_ tenantID: UUID, logger: Logger) async throws -> Int
}

struct PostgresUserRepository: UserRepository {
    let client: Database

    /// A user's columns (`u`) with its tenant's (`t`), in the order `user(from:)` reads them.
    static let userColumns = """
        u.id, u.tenant_id, u.email, u.password_hash, u.role, u.full_name, t.name, t.slug, u.created_at, u.token_version, \
        u.email_verified_at, u.deleted_at, u.last_login_at
        """
    static let userColumnCount = 13
    /// A user with its tenant, ready for a `WHERE` on `u` and `t`.
    static let selectUser = "SELECT \(userColumns) FROM users u JOIN tenant_directory t ON t.tenant_id = u.tenant_id"

    func create(_ owner: NewUser, logger: Logger) async throws -> UserRecord {
        do {
            return try await client.transaction(logger: logger) { connection in
                try await Self.enterDirectory(owner.tenantID, name: owner.tenantName, slug: owner.tenantSlug, on: connection, logger: logger)
                return try await Self.insert(owner, emailVerified: false, on: connection, logger: logger)
            }
        } catch where error.isUniqueViolation {
            throw Self.emailTaken
        }
    }

    /// Records (or refreshes) a tenant in auth's directory, in the caller's transaction on `connection`.
    static func enterDirectory(_ tenantID: UUID, name: String, slug: String, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query(
            """
            INSERT INTO tenant_directory (tenant_id, name, slug) VALUES (\(tenantID), \(name), \(slug))
            ON CONFLICT (tenant_id) DO UPDATE SET name = EXCLUDED.name, slug = EXCLUDED.slug
            """,
            logger: logger
        )
    }

    /// Inserts `user` in a transaction on `connection` (its tenant already in the directory); a
    /// taken email fails the statement with a unique violation (`emailTaken` for the caller to answer).
    static func insert(_ user: NewUser, emailVerified: Bool, on connection: PostgresConnection, logger: Logger) async throws -> UserRecord {
        let id = UUID()
        let rows = try await connection.query(
            """
            INSERT INTO users (id, tenant_id, email, password_hash, role, full_name, email_verified_at)
            VALUES (\(id), \(user.tenantID), \(user.email), \(user.passwordHash), \(user.role.rawValue), \(user.fullName), CASE WHEN \(emailVerified) THEN now() END)
            RETURNING created_at, email_verified_at
            """,
            logger: logger
        ).collect()
        guard let (createdAt, verifiedAt) = try rows.first?.decode((Date, Date?).self) else { throw AppError.internalError("insert returned no row") }
        return UserRecord(
            id: id, tenantID: user.tenantID, email: user.email, passwordHash: user.passwordHash, role: user.role, fullName: user.fullName,
            tenantName: user.tenantName, tenantSlug: user.tenantSlug, createdAt: createdAt, tokenVersion: 0, emailVerifiedAt: verifiedAt,
            deletedAt: nil, lastLoginAt: nil
        )
    }

    static let emailTaken = AppError.conflict("An account with this email already exists", code: "EMAIL_TAKEN")

    func find(email: String, logger: Logger) async throws -> UserRecord? {
        try await first(
            client.query(
                """
                \(unescaped: Self.selectUser) WHERE lower(u.email) = lower(\(email))
                ORDER BY u.deleted_at IS NULL DESC, u.deleted_at DESC LIMIT 1
                """,
                logger: logger
            )
        )
    }

    func find(id: UUID, logger: Logger) async throws -> UserRecord? {
        try await first(client.query("\(unescaped: Self.selectUser) WHERE u.id = \(id) AND u.deleted_at IS NULL", logger: logger))
    }

    func deleteTenant(_ tenantID: UUID, logger: Logger) async throws -> Int {
        try await client.transaction(logger: logger) { connection in try await Self.deleteTenant(tenantID, on: connection, logger: logger) }
    }

    /// Removes a tenant's users and directory entry in a transaction on `connection`; returns how many users went.
    static func deleteTenant(_ tenantID: UUID, on connection: PostgresConnection, logger: Logger) async throws -> Int {
        let rows = try await connection.query("DELETE FROM users WHERE tenant_id = \(tenantID) RETURNING id", logger: logger)
        var count = 0
        for try await _ in rows { count += 1 }
        try await connection.query("DELETE FROM tenant_directory WHERE tenant_id = \(tenantID)", logger: logger)
        return count
    }

    private func first(_ rows: QueryRows) throws -> UserRecord? {
        try rows.rows.first.map(Self.user(from:))
    }

    /// The user (deleted or not) as a transaction on `connection` sees it.
    static func user(id: UUID, on connection: PostgresConnection, logger: Logger) async throws -> UserRecord? {
        let rows = try await connection.query("\(unescaped: selectUser) WHERE u.id = \(id)", logger: logger).collect()
        return try rows.first.map(user(from:))
    }

    /// Reads the columns of `userColumns`, first in the row.
    static func user(from row: PostgresRow) throws -> UserRecord {
        let (id, tenantID, email, hash, role, fullName, tenantName, slug, createdAt, version, verifiedAt, deletedAt, lastLoginAt) =
            try row.decode((UUID, UUID, String, String, String, String?, String, String, Date, Int, Date?, Date?, Date?).self)
        return UserRecord(
            id: id, tenantID: tenantID, email: email, passwordHash: hash, role: Role(rawValue: role) ?? .user, fullName: fullName,
            tenantName: tenantName, tenantSlug: slug, createdAt: createdAt, tokenVersion: version, emailVerifiedAt: verifiedAt,
            deletedAt: deletedAt, lastLoginAt: lastLoginAt
        )
    }
}
