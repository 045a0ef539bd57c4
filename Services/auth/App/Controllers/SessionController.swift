import Foundation
import Hummingbird
import Logging
import ServiceCore

/// `/api/auth/refresh`, `/api/auth/logout`, `/api/auth/logout-all`: a session's life after sign-in.
struct SessionController: Sendable {
    let auth: AuthController
    let sessions: any SessionRepository

    struct RefreshRequest: Decodable {
        var refreshToken: String
    }

    struct LogoutResponse: Codable, Sendable {
        var message: String
        /// Sessions this call ended (0 when the session was already over).
        var sessionsEnded: Int
    }

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        group.post("refresh", use: refresh)
        let signedIn = group.group().add(middleware: JWTAuthMiddleware(verifier: auth.verifier))
        signedIn.post("logout", use: logout)
        signedIn.post("logout-all", use: logoutAll)
    }

    @Sendable func refresh(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<AuthController.LoginResponse> {
        let input = try await request.decodeJSON(as: RefreshRequest.self, context: context)
        guard !input.refreshToken.isEmpty else { throw AppError.validation(["refresh_token": ["is required"]]) }
        guard let token = RefreshToken.parse(input.refreshToken) else { throw Self.invalid }
        switch try await sessions.refresh(token, logger: context.logger) {
        case .rotated(let session, let user, let successor), .repeated(let session, let user, let successor):
            let tokens = try await auth.tokens(for: user, session: session, refreshToken: successor)
            return JSONResponse(auth.response(for: user, tokens))
        case .reused:
            throw AppError.rejectedCredentials(
                "This refresh token was already used; the session is ended for safety. Sign in again", code: "REFRESH_TOKEN_REUSED"
            )
        case .invalid:
            throw Self.invalid
        }
    }

    @Sendable func logout(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<LogoutResponse> {
        let identity = try context.requireIdentity()
        var ended = 0
        if let sid = identity.sid.flatMap(UUID.init(uuidString:)),
            try await sessions.revoke(session: sid, userID: identity.userUUID, reason: "logout", logger: context.logger)
        {
            ended = 1
        }
        context.logger.info("logged out", metadata: ["user_id": "\(identity.userID)", "session_id": "\(identity.sid ?? "-")"])
        return JSONResponse(LogoutResponse(message: "Logged out", sessionsEnded: ended))
    }

    @Sendable func logoutAll(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<LogoutResponse> {
        let identity = try context.requireIdentity()
        let ended = try await sessions.revokeAll(userID: identity.userUUID, reason: "logout_all", logger: context.logger)
        context.logger.notice("logged out everywhere", metadata: ["user_id": "\(identity.userID)", "sessions": "\(ended)"])
        return JSONResponse(LogoutResponse(message: "Logged out of every session", sessionsEnded: ended))
    }

    /// Not a bearer-token failure, so no `WWW-Authenticate`: the rejected credential is the body's refresh token.
    static let invalid = AppError.rejectedCredentials("The refresh token is invalid or expired", code: "INVALID_REFRESH_TOKEN")
}
