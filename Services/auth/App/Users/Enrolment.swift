import Foundation
import Logging
import ServiceCore

/// A new account, as owner creation (registration) and sign-up both make one: refused with 409
/// when the email is taken (found before a bcrypt hash is spent on it), then signed in, with its
/// verification link mailed.
struct Enrolment: Sendable {
    let auth: AuthController
    let emails: AccountEmails

    /// `user`'s password hash is ignored; `password` is hashed here.
    func enrol(_ user: NewUser, password: String, logger: Logger) async throws -> (UserRecord, AuthController.Tokens) {
        if let existing = try await auth.users.find(email: user.email, logger: logger), existing.deletedAt == nil {
            throw PostgresUserRepository.emailTaken
        }
        var user = user
        user.passwordHash = try await auth.hasher.hash(password)
        let created = try await auth.users.create(user, logger: logger)
        let tokens = try await auth.signIn(created, logger: logger)
        try await emails.sendVerification(to: created, logger: logger)
        return (created, tokens)
    }
}
