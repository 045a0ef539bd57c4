import Foundation
import HTTPTypes
import Logging
import PostgresNIO
import ServiceCore

/// Where an invitation stands, from its timestamps: accepted and revoked are final, a pending one
/// past its `expires_at` is expired.
enum InvitationStatus: String, Sendable, CaseIterable {
    case pending
    case accepted
    case expired
    case revoked
}

/// An invitation as it is listed; its token is never read back (only a hash of it is kept).
struct InvitationRecord: Sendable {
    var id: UUID
    var tenantID: UUID
    var email: String
    var role: Role
    var fullName: String?
    var invitedBy: UUID?
    /// The account it made, once accepted.
    var userID: UUID?
    var status: InvitationStatus
    var createdAt: Date
    var expiresAt: Date
    var acceptedAt: Date?
    var revokedAt: Date?
}

/// Who is invited where, with which role; `email` already normalised.
struct NewInvitation: Sendable {
    var tenantID: UUID
    var email: String
    var role: Role
    var fullName: String?
}

struct InvitationFilter: Sendable {
    /// nil: every tenant (super_admin only).
    var tenant: UUID?
    var status: InvitationStatus?
    var limit: Int
    var offset: Int
}

/// Invitations to join a tenant: made (and mailed) by its admins within `RoleRules`, accepted once
/// with the mailed token, which makes the account.
protocol Invitations: Sendable {
    /// Records the invitation and queues its mail in one transaction. An open invitation of the same
    /// email to the same tenant is replaced (revoked; its link stops working). 409 when the email
    /// already has an account; 403 when the role rules forbid touching the invitation replaced.
    func invite(_ invitation: NewInvitation, by actor: Actor, logger: Logger) async throws -> InvitationRecord
    func list(_ filter: InvitationFilter, logger: Logger) async throws -> (invitations: [InvitationRecord], total: Int)
    /// Revokes a pending or expired invitation; 404 outside the actor's tenant (any tenant for a
    /// super_admin), 403 by the role rules, 409 when it was accepted or revoked before.
    func revoke(_ id: UUID, by actor: Actor, logger: Logger) async throws
    /// The tenant of the pending invitation with this token, or nil; a look before the costly work.
    func pendingTenant(token: String, logger: Logger) async throws -> UUID?
    /// Makes the invited account (email verified: the mail reached it) and marks the invitation
    /// accepted, in one transaction with the invitation locked, so a token makes one account however
    /// often it is sent at once; nil when the token is not pending. 409 when the email got an account.
    func accept(token: String, passwordHash: String, fullName: String, logger: Logger) async throws -> UserRecord?
}

struct PostgresInvitations: Invitations {
    let client: Database
    /// Where the mailed link points: the dashboard's page that posts the token back.
    let appBaseURL: String
    let lifetime: Duration

    func invite(_ invitation: NewInvitation, by actor: Actor, logger: Logger) async throws -> InvitationRecord {
        try await client.transaction(logger: logger) { connection in
            try await invite(invitation, by: actor, on: connection, logger: logger)
        }
    }

    /// `invite`'s work, in the caller's transaction on `connection`.
    func invite(_ invitation: NewInvitation, by actor: Actor, on connection: PostgresConnection, logger: Logger) async throws -> InvitationRecord {
        let token = SecretToken.random()
        // Invitations of one email to one tenant take turns, so two at once leave one open.
        try await connection.query(
            "SELECT pg_advisory_xact_lock(\(Self.lockSpace), hashtext(\(invitation.tenantID.uuidString + "/" + invitation.email)))",
            logger: logger
        )
        let context = try await connection.query(
            """
            SELECT (SELECT name FROM tenant_directory WHERE tenant_id = \(invitation.tenantID)), full_name, email
            FROM users WHERE id = \(actor.id) AND deleted_at IS NULL
            """,
            logger: logger
        ).collect()
        guard let (tenantName, inviterName, inviterEmail) = try context.first?.decode((String?, String?, String).self) else {
            throw AppError.unauthorized("User no longer exists", code: "INVALID_TOKEN")
        }
        guard let tenantName else { throw Self.tenantNotFound }
        let open = try await connection.query(
            """
            SELECT id, role FROM invitations
            WHERE tenant_id = \(invitation.tenantID) AND email = \(invitation.email) AND accepted_at IS NULL AND revoked_at IS NULL
            FOR UPDATE
            """,
            logger: logger
        ).collect()
        let replaced = try open.first?.decode((UUID, String).self)
        // After the lock on the open invitation: an acceptance of it that committed meanwhile is seen here.
        let members = try await connection.query(
            "SELECT tenant_id FROM users WHERE lower(email) = \(invitation.email) AND deleted_at IS NULL", logger: logger
        ).collect()
        if let tenant = try members.first?.decode(UUID.self) {
            throw tenant == invitation.tenantID
                ? AppError.conflict("This email already belongs to a member of the tenant", code: "ALREADY_MEMBER")
                : PostgresUserRepository.emailTaken
        }
        if let refusal = RoleRules.refusal(
            actor: actor.role, current: replaced.flatMap { Role(rawValue: $0.1) } ?? invitation.role, new: invitation.role
        ) {
            throw RoleRules.notAllowed(refusal)
        }
        if let replaced {
            try await connection.query("UPDATE invitations SET revoked_at = now() WHERE id = \(replaced.0)", logger: logger)
        }
        let rows = try await connection.query(
            """
            WITH i AS (
                INSERT INTO invitations (id, tenant_id, email, role, full_name, invited_by, token_hash, expires_at)
                VALUES (
                    \(UUID()), \(invitation.tenantID), \(invitation.email), \(invitation.role.rawValue), \(invitation.fullName), \(actor.id),
                    \(SecretToken.hash(token)), now() + make_interval(secs => \(lifetime.inSeconds))
                ) RETURNING *
            ) SELECT \(unescaped: Self.columns) FROM i
            """,
            logger: logger
        ).collect()
        guard let record = try rows.first.map(Self.invitation(from:)) else { throw AppError.internalError("insert returned no row") }
        try await MailOutbox.enqueue(
            mail(for: record, token: token, tenantName: tenantName, inviter: inviterName ?? inviterEmail), on: connection, logger: logger
        )
        return record
    }

    func list(_ filter: InvitationFilter, logger: Logger) async throws -> (invitations: [InvitationRecord], total: Int) {
        // The same filter for the page and the count, bound by position.
        func filtered(_ head: String, _ tail: String) -> PostgresQuery {
            var binds = PostgresBindings()
            binds.append(filter.tenant)
            binds.append(filter.status?.rawValue)
            let sql = head + """
                 WHERE ($1::uuid IS NULL OR i.tenant_id = $1) AND ($2::text IS NULL OR \(Self.status) = $2)
                """ + " " + tail
            return PostgresQuery(unsafeSQL: sql, binds: binds)
        }
        let rows = try await client.query(
            filtered("SELECT \(Self.columns) FROM invitations i", "ORDER BY i.created_at DESC, i.id LIMIT \(filter.limit) OFFSET \(filter.offset)"),
            logger: logger
        )
        let total = try await client.query(filtered("SELECT count(*)::int FROM invitations i", ""), logger: logger)
        return (try rows.rows.map(Self.invitation(from:)), try total.decode(Int.self).first ?? 0)
    }

    func revoke(_ id: UUID, by actor: Actor, logger: Logger) async throws {
        try await client.transaction(logger: logger) { connection in
            let everyTenant = actor.role == .superAdmin
            let rows = try await connection.query(
                """
                SELECT \(unescaped: Self.columns) FROM invitations i
                WHERE i.id = \(id) AND (\(everyTenant) OR i.tenant_id = \(actor.tenantID)) FOR UPDATE
                """,
                logger: logger
            ).collect()
            // Another tenant's invitation is as unknown as one that never existed.
            guard let invitation = try rows.first.map(Self.invitation(from:)) else { throw Self.notFound }
            if let refusal = RoleRules.refusal(actor: actor.role, current: invitation.role, new: nil) {
                throw RoleRules.notAllowed(refusal)
            }
            switch invitation.status {
            case .accepted:
                throw AppError.conflict("This invitation was accepted; remove the user instead", code: "INVITATION_ACCEPTED")
            case .revoked:
                throw AppError.conflict("This invitation was revoked before", code: "INVITATION_REVOKED")
            case .pending, .expired:
                try await connection.query("UPDATE invitations SET revoked_at = now() WHERE id = \(id)", logger: logger)
            }
        }
    }

    func pendingTenant(token: String, logger: Logger) async throws -> UUID? {
        let rows = try await client.query(
            "SELECT tenant_id FROM invitations WHERE token_hash = \(SecretToken.hash(token)) AND \(unescaped: Self.pending)", logger: logger
        )
        return try rows.decode(UUID.self).first
    }

    func accept(token: String, passwordHash: String, fullName: String, logger: Logger) async throws -> UserRecord? {
        do {
            return try await client.transaction(logger: logger) { connection in
                // A second accept of the same token waits here, then finds it accepted.
                let rows = try await connection.query(
                    """
                    SELECT i.id, i.tenant_id, t.name, t.slug, i.email, i.role
                    FROM invitations i JOIN tenant_directory t ON t.tenant_id = i.tenant_id
                    WHERE i.token_hash = \(SecretToken.hash(token)) AND \(unescaped: Self.pending)
                    FOR UPDATE OF i
                    """,
                    logger: logger
                ).collect()
                guard let (id, tenantID, tenantName, slug, email, role) = try rows.first?.decode((UUID, UUID, String, String, String, String).self)
                else { return nil }
                let user = try await PostgresUserRepository.insert(
                    NewUser(
                        tenantID: tenantID, tenantName: tenantName, tenantSlug: slug, email: email, passwordHash: passwordHash, fullName: fullName,
                        role: Role(rawValue: role) ?? .user
                    ),
                    emailVerified: true, on: connection, logger: logger
                )
                try await connection.query(
                    "UPDATE invitations SET accepted_at = now(), accepted_user_id = \(user.id) WHERE id = \(id)", logger: logger
                )
                return user
            }
        } catch where error.isUniqueViolation {
            // The email got an account (in this tenant or another) after the invitation was made.
            throw PostgresUserRepository.emailTaken
        }
    }

    private func mail(for invitation: InvitationRecord, token: String, tenantName: String, inviter: String) -> MailMessage {
        let days = Int(lifetime.inSeconds / 86_400)
        return MailMessage(
            to: invitation.email, subject: "You are invited to join \(Self.oneLine(tenantName))",
            textBody: """
                Hello\(invitation.fullName.map { " \($0)" } ?? ""),

                \(inviter) invited you to join \(tenantName) as \(invitation.role == .user ? "a user" : "an \(invitation.role.rawValue)"). \
                To accept, choose your password here:

                \(appBaseURL)/accept-invitation?token=\(token)

                The link works once, for \(days) day\(days == 1 ? "" : "s"). If you did not expect this invitation, ignore this mail.
                """
        )
    }

    /// `text` on one line: a tenant's name may hold line breaks and control characters, which a mail
    /// header must not (the outbox refuses them).
    private static func oneLine(_ text: String) -> String {
        text.split(whereSeparator: { $0.isNewline || $0.unicodeScalars.contains { $0.properties.generalCategory == .control } })
            .joined(separator: " ")
    }

    /// Neither accepted nor revoked, and not expired (`i` or the bare table).
    private static let pending = "accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now()"

    private static let status = """
        CASE WHEN i.accepted_at IS NOT NULL THEN 'accepted' WHEN i.revoked_at IS NOT NULL THEN 'revoked' \
        WHEN i.expires_at <= now() THEN 'expired' ELSE 'pending' END
        """

    /// An invitation's columns (`i`), in the order `invitation(from:)` reads them.
    private static let columns = """
        i.id, i.tenant_id, i.email, i.role, i.full_name, i.invited_by, i.accepted_user_id, \(status), i.created_at, i.expires_at, \
        i.accepted_at, i.revoked_at
        """

    private static func invitation(from row: PostgresRow) throws -> InvitationRecord {
        let (id, tenantID, email, role, fullName, invitedBy, userID, status, createdAt, expiresAt, acceptedAt, revokedAt) =
            try row.decode((UUID, UUID, String, String, String?, UUID?, UUID?, String, Date, Date, Date?, Date?).self)
        return InvitationRecord(
            id: id, tenantID: tenantID, email: email, role: Role(rawValue: role) ?? .user, fullName: fullName, invitedBy: invitedBy,
            userID: userID, status: InvitationStatus(rawValue: status) ?? .pending, createdAt: createdAt, expiresAt: expiresAt,
            acceptedAt: acceptedAt, revokedAt: revokedAt
        )
    }

    static let notFound = AppError(.notFound, code: "INVITATION_NOT_FOUND", detail: "Invitation not found")

    static let tenantNotFound = AppError.notFound("No tenant has this id", code: "TENANT_NOT_FOUND")

    /// The first key of the per-(tenant, email) advisory locks.
    private static let lockSpace: Int32 = 0x494E_5649
}
