import Foundation
import HTTPTypes
import Logging
import PostgresNIO
import ServiceCore

/// Owners created under a registration id (tenancy's registration saga, docs/design.md): the record
/// that makes a second creation under the same id answer the same user, and the tombstone an undo
/// leaves, so that a creation arriving after the undo (a timed-out call whose write lands late)
/// creates nothing instead of a user of a tenant that no longer exists, holding the email for good.
struct OwnerRegistrations: Sendable {
    enum State: Sendable, Equatable {
        case created(userID: UUID)
        case undone
    }

    let client: Database

    static let undone = AppError(.gone, code: "REGISTRATION_UNDONE", detail: "This registration was undone; nothing was created")

    func state(_ registrationID: UUID, logger: Logger) async throws -> State? {
        let rows = try await client.query(
            "SELECT user_id, undone_at FROM owner_registrations WHERE registration_id = \(registrationID)", logger: logger
        )
        for (userID, undoneAt) in try rows.decode((UUID?, Date?).self) {
            guard undoneAt == nil, let userID else { return .undone }
            return .created(userID: userID)
        }
        return nil
    }

    /// Creates the tenant's directory entry and the owner and records the registration, in one
    /// transaction. Nil when the registration was recorded first by someone else (a concurrent
    /// creation under the same id, or an undo): then nothing is created. 409 when the email is taken.
    ///
    /// The record is written last, after the user: an undo that came first holds the row, so this
    /// insert fails and rolls the user back; one that comes while this transaction runs waits for it
    /// and then removes what it made.
    func create(_ owner: NewUser, registrationID: UUID, logger: Logger) async throws -> UserRecord? {
        struct AlreadyRecorded: Error {}
        do {
            return try await client.transaction(logger: logger) { connection in
                try await PostgresUserRepository.enterDirectory(owner.tenantID, name: owner.tenantName, slug: owner.tenantSlug, on: connection, logger: logger)
                let user = try await PostgresUserRepository.insert(owner, emailVerified: false, on: connection, logger: logger)
                let recorded = try await connection.query(
                    """
                    INSERT INTO owner_registrations (registration_id, tenant_id, user_id) VALUES (\(registrationID), \(owner.tenantID), \(user.id))
                    ON CONFLICT (registration_id) DO NOTHING RETURNING registration_id
                    """,
                    logger: logger
                ).collect()
                guard !recorded.isEmpty else { throw AlreadyRecorded() }
                return user
            }
        } catch is AlreadyRecorded {
            return nil
        } catch where error.isUniqueViolation {
            // A concurrent creation under the same id took the email first.
            if try await state(registrationID, logger: logger) != nil { return nil }
            throw PostgresUserRepository.emailTaken
        }
    }

    /// The undo: leaves the tombstone and removes the tenant's users and directory entry, in one
    /// transaction; returns how many users went.
    func undo(_ registrationID: UUID, tenantID: UUID, logger: Logger) async throws -> Int {
        try await client.transaction(logger: logger) { connection in
            try await connection.query(
                """
                INSERT INTO owner_registrations (registration_id, tenant_id, undone_at) VALUES (\(registrationID), \(tenantID), now())
                ON CONFLICT (registration_id) DO UPDATE SET undone_at = coalesce(owner_registrations.undone_at, now())
                """,
                logger: logger
            )
            return try await PostgresUserRepository.deleteTenant(tenantID, on: connection, logger: logger)
        }
    }
}

extension Enrolment {
    /// Owner creation under a registration id: the first call creates and signs in the owner
    /// (`created` true); any later one signs the same owner in again and creates nothing; after an
    /// undo every call is refused with 410 `REGISTRATION_UNDONE`.
    func enrolOwner(
        _ user: NewUser, password: String, registrationID: UUID, registrations: OwnerRegistrations, logger: Logger
    ) async throws -> (UserRecord, AuthController.Tokens, created: Bool) {
        if let state = try await registrations.state(registrationID, logger: logger) {
            return try await signInAgain(state, logger: logger)
        }
        if let existing = try await auth.users.find(email: user.email, logger: logger), existing.deletedAt == nil {
            // A concurrent call under the same registration may have committed between the two reads.
            guard let state = try await registrations.state(registrationID, logger: logger) else { throw PostgresUserRepository.emailTaken }
            return try await signInAgain(state, logger: logger)
        }
        var user = user
        user.passwordHash = try await auth.hasher.hash(password)
        guard let created = try await registrations.create(user, registrationID: registrationID, logger: logger) else {
            guard let state = try await registrations.state(registrationID, logger: logger) else { throw PostgresUserRepository.emailTaken }
            return try await signInAgain(state, logger: logger)
        }
        let tokens = try await auth.signIn(created, logger: logger)
        try await emails.sendVerification(to: created, logger: logger)
        return (created, tokens, true)
    }

    private func signInAgain(_ state: OwnerRegistrations.State, logger: Logger) async throws -> (UserRecord, AuthController.Tokens, created: Bool) {
        guard case .created(let userID) = state, let user = try await auth.users.find(id: userID, logger: logger) else {
            throw OwnerRegistrations.undone
        }
        return (user, try await auth.signIn(user, logger: logger), false)
    }
}
