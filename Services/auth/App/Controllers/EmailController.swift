import Foundation
import Hummingbird
import Logging
import ServiceCore

/// `/api/auth/verify-email`, `resend-verification`, `forgot-password`, `reset-password`: the
/// flows that go through a link in a mail.
struct EmailController: Sendable {
    let emails: AccountEmails
    let users: any UserRepository
    let hasher: PasswordHasher
    /// The least time `resend-verification` and `forgot-password` take, whatever they found, so
    /// their timing tells no more than their answer (which is always the same).
    let answerFloor: Duration

    struct VerifyRequest: Decodable {
        var token: String
        var email: String?
    }

    struct EmailRequest: Decodable {
        var email: String
    }

    struct ResetRequest: Decodable {
        var token: String
        var newPassword: String
        var confirmPassword: String
    }

    struct Verified: Codable, Sendable {
        var message: String
        var userId: String
        var emailVerified: Bool
        var status: String
    }

    struct Message: Codable, Sendable {
        var message: String
    }

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        group.post("verify-email", use: verify)
        group.post("resend-verification", use: resend)
        group.post("forgot-password", use: forgot)
        group.post("reset-password", use: reset)
    }

    @Sendable func verify(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<Verified> {
        let input = try await request.decodeJSON(as: VerifyRequest.self, context: context)
        guard !input.token.isEmpty else { throw AppError.validation(["token": ["is required"]]) }
        let email = input.email.map(CredentialPolicy.normalizedEmail)
        // 401 without `WWW-Authenticate`, as for a refresh token: the refused credential is the mailed token.
        let invalid = AppError.rejectedCredentials("The verification link is invalid or has expired", code: "VERIFICATION_ERROR")
        // Not one of our tokens' shape: refused before any lookup.
        guard input.token.utf8.count <= 128 else { throw invalid }
        let user: UserRecord?
        do {
            user = try await emails.verify(token: input.token, email: email, logger: context.logger)
        } catch is AccountEmails.CancelVerification {
            throw invalid
        }
        guard let user else { throw invalid }
        context.logger.info("email verified", metadata: ["user_id": "\(user.id)"])
        return JSONResponse(Verified(message: "Email verified", userId: user.id.lowercased, emailVerified: true, status: "active"))
    }

    @Sendable func resend(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<Message> {
        let floor = ContinuousClock.now + answerFloor
        let email = try await Self.email(request, context: context)
        if let user = try await users.find(email: email, logger: context.logger), user.deletedAt == nil {
            try await emails.sendVerification(to: user, logger: context.logger)
        }
        try? await Task.sleep(until: floor)
        return JSONResponse(Message(message: "If an account with this email still needs verifying, a new link is on its way"))
    }

    @Sendable func forgot(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<Message> {
        let floor = ContinuousClock.now + answerFloor
        let email = try await Self.email(request, context: context)
        try await emails.sendReset(email: email, logger: context.logger)
        try? await Task.sleep(until: floor)
        return JSONResponse(Message(message: "If an account has this email, a link to reset its password is on its way"))
    }

    @Sendable func reset(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<Message> {
        let input = try await request.decodeJSON(as: ResetRequest.self, context: context)
        var problems: [String: [String]] = [:]
        if input.token.isEmpty { problems["token"] = ["is required"] }
        let policy = CredentialPolicy.passwordProblems(input.newPassword)
        if !policy.isEmpty { problems["new_password"] = policy }
        if input.confirmPassword != input.newPassword { problems["confirm_password"] = ["must match new_password"] }
        guard problems.isEmpty else { throw AppError.validation(problems) }
        let invalid = AppError.rejectedCredentials("The reset link is invalid or has expired", code: "RESET_TOKEN_INVALID")
        guard input.token.utf8.count <= 128 else { throw invalid }
        let hash = try await hasher.hash(input.newPassword)
        guard let user = try await emails.reset(token: input.token, hash: hash, logger: context.logger) else { throw invalid }
        context.logger.notice("password reset", metadata: ["user_id": "\(user.id)"])
        return JSONResponse(Message(message: "Password changed; sign in with the new password"))
    }

    /// The body's email, trimmed and lower-cased; 422 when it is not an email address.
    private static func email(_ request: Request, context: AppRequestContext) async throws -> String {
        let input = try await request.decodeJSON(as: EmailRequest.self, context: context)
        let email = CredentialPolicy.normalizedEmail(input.email)
        guard !email.isEmpty else { throw AppError.validation(["email": ["is required"]]) }
        let problems = CredentialPolicy.emailProblems(email)
        guard problems.isEmpty else { throw AppError.validation(["email": problems]) }
        return email
    }
}
