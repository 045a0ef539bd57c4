import Foundation
import Hummingbird
import InternalAPI
import Logging
import ServiceCore

/// `/api/auth/*`: login and the current user.
struct AuthController: Sendable {
    let users: any UserRepository
    let sessions: any SessionRepository
    let attempts: any LoginAttempts
    /// Tenants as tenancy knows them (status), cached briefly.
    let directory: TenantDirectory
    let hasher: PasswordHasher
    let issuer: TokenIssuer
    let verifier: AccessTokenVerifier

    struct LoginRequest: Decodable {
        var email: String
        var password: String
    }

    struct LoginResponse: Codable, Sendable {
        var accessToken: String
        var tokenType: String
        var expiresIn: Int
        var userId: String
        var email: String
        var role: String
        var tenantId: String
        var tenantName: String
        var refreshToken: String
    }

    struct MeResponse: Codable, Sendable {
        var userId: String
        var email: String
        var role: String
        var tenantId: String
        var tenantName: String
        var tenantSlug: String
        var fullName: String?
        var emailVerified: Bool
        var isSupabaseAuth: Bool
    }

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        group.post("login", use: login)
        group.group("me").add(middleware: JWTAuthMiddleware(verifier: verifier)).get(use: me)
    }

    @Sendable func login(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<LoginResponse> {
        let input = try await request.decodeJSON(as: LoginRequest.self, context: context)
        let email = CredentialPolicy.normalizedEmail(input.email)
        var missing: [String: [String]] = [:]
        if email.isEmpty { missing["email"] = ["is required"] }
        if input.password.isEmpty { missing["password"] = ["is required"] }
        guard missing.isEmpty else { throw AppError.validation(missing) }

        // Refused before anything is counted when the hashing threads are full (503, Retry-After).
        guard hasher.runner.hasRoom else { throw HashAdmission.busy }
        // Counted before the password is checked; an email is locked whether or not it has an account.
        if let wait = try await attempts.begin(email: email, logger: context.logger) {
            throw Self.locked(for: wait)
        }
        // The same answer, after the same work, whether the email is unknown or the password wrong.
        let invalid = AppError.rejectedCredentials("Invalid email or password", code: "INVALID_CREDENTIALS")
        guard input.password.unicodeScalars.count <= CredentialPolicy.maxPasswordLength, let user = try await users.find(email: email, logger: context.logger) else {
            try await hasher.verifyDecoy(input.password)
            throw invalid
        }
        guard try await hasher.verify(input.password, against: user.passwordHash) else { throw invalid }
        try await attempts.succeeded(email: email, logger: context.logger)
        // Only after the password: a deleted account's status is no one else's business.
        guard user.deletedAt == nil else { throw AppError(.forbidden, code: "ACCOUNT_DELETED", detail: "This account has been deleted") }
        try await refuseSuspendedTenant(user.tenantID, logger: context.logger)

        let tokens = try await signIn(user, logger: context.logger)
        context.logger.info("login succeeded", metadata: ["user_id": "\(user.id)", "session_id": "\(tokens.session)"])
        return JSONResponse(response(for: user, tokens))
    }

    /// An access token and a refresh token.
    struct Tokens: Sendable {
        var session: UUID
        var accessToken: String
        var refreshToken: RefreshToken
    }

    /// Starts a session for `user`: its first refresh token and an access token carrying it.
    func signIn(_ user: UserRecord, logger: Logger) async throws -> Tokens {
        let session = try await sessions.start(userID: user.id, logger: logger)
        return try await tokens(for: user, session: session.id, refreshToken: session.refreshToken)
    }

    func tokens(for user: UserRecord, session: UUID, refreshToken: RefreshToken) async throws -> Tokens {
        Tokens(session: session, accessToken: try await issuer.issue(claims(for: user, session: session)), refreshToken: refreshToken)
    }

    func response(for user: UserRecord, _ tokens: Tokens) -> LoginResponse {
        LoginResponse(
            accessToken: tokens.accessToken, tokenType: "bearer", expiresIn: issuer.lifetimeSeconds, userId: user.id.lowercased,
            email: user.email, role: user.role.rawValue, tenantId: user.tenantID.lowercased, tenantName: user.tenantName,
            refreshToken: tokens.refreshToken.value
        )
    }

    @Sendable func me(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<MeResponse> {
        let identity = try context.requireIdentity()
        // A token outlives nothing: a deleted user's token stops working here.
        guard let user = try await users.find(id: identity.userUUID, logger: context.logger) else {
            throw AppError.unauthorized("User no longer exists", code: "INVALID_TOKEN")
        }
        // The gateway refuses voided tokens from its copy of the revocations; auth has the row at hand.
        guard (identity.ver ?? 0) >= user.tokenVersion else { throw Self.revoked }
        return JSONResponse(meResponse(user))
    }

    func meResponse(_ user: UserRecord) -> MeResponse {
        MeResponse(
            userId: user.id.lowercased, email: user.email, role: user.role.rawValue, tenantId: user.tenantID.lowercased,
            tenantName: user.tenantName, tenantSlug: user.tenantSlug, fullName: user.fullName, emailVerified: user.emailVerifiedAt != nil,
            isSupabaseAuth: false
        )
    }

    func claims(for user: UserRecord, session: UUID?) -> AccessTokenClaims {
        AccessTokenClaims(
            userID: user.id, tenantID: user.tenantID, email: user.email, role: user.role, issuedAt: Date(),
            lifetime: TimeInterval(issuer.lifetimeSeconds), sessionID: session, tokenVersion: user.tokenVersion
        )
    }

    /// 429 for a locked email; the same for every email, so it tells nobody whether an account exists.
    static func locked(for wait: Duration) -> AppError {
        let seconds = max(1, Int(wait.inSeconds.rounded(.up)))
        let minutes = (seconds + 59) / 60
        return AppError(
            .tooManyRequests, code: "ACCOUNT_LOCKED",
            detail: "Too many failed sign-in attempts. Try again in \(minutes) minute\(minutes == 1 ? "" : "s").",
            headers: [.retryAfter: String(seconds)]
        )
    }

    /// 403 when tenancy says the tenant is suspended. When tenancy cannot be asked, sign-in goes on
    /// (logged): the gateway refuses a suspended tenant's traffic anyway, from its own copy.
    func refuseSuspendedTenant(_ tenantID: UUID, logger: Logger) async throws {
        do {
            if try await directory.tenant(id: tenantID, logger: logger)?.status == "suspended" { throw Self.tenantSuspended }
        } catch let error as AppError where error.status != .forbidden {
            logger.warning("could not ask tenancy for the tenant's status; sign-in allowed", metadata: ["error": "\(error.detail)"])
        }
    }

    static let tenantSuspended = AppError(.forbidden, code: "TENANT_SUSPENDED", detail: "This account is suspended")

    static let revoked = AppError.unauthorized("This session has ended; sign in again", code: "TOKEN_REVOKED")
}

extension UUID {
    /// The lower-case form the API uses everywhere.
    var lowercased: String { uuidString.lowercased() }
}
