import Foundation
import Hummingbird
import JWTKit
import Logging
import ServiceCore

/// `/api/auth/signing-keys*` (super_admin): the keys that sign and verify access tokens, and their
/// rotation. Never shows private material.
struct SigningKeysController: Sendable {
    let auth: AuthController

    struct KeyView: Codable, Sendable {
        var kid: String
        var state: SigningKeyState
        var createdAt: Date?
        var activatesAt: Date?
        var retiredAt: Date?
        /// When it leaves the JWKS (and its private half the database): retired + token lifetime + activation delay.
        var publishedUntil: Date?
    }

    struct KeyList: Codable, Sendable {
        /// `database` (rotated with the endpoint) or `configuration` (`JWT_SIGNING_KEY`).
        var source: String
        var keys: [KeyView]
    }

    struct Rotated: Codable, Sendable {
        var kid: String
        var createdAt: Date
        var activatesAt: Date
        var retiringKid: String?
        var retiringPublishedUntil: Date?
    }

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        let keys = group.group("signing-keys").add(middleware: JWTAuthMiddleware(verifier: auth.verifier))
        keys.get(use: list)
        keys.post("rotate", use: rotate)
    }

    @Sendable func list(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<KeyList> {
        try await requireSuperAdmin(context)
        let issuer = auth.issuer
        switch issuer.source {
        case .configured:
            let jwks = try await issuer.fetchJWKS()
            // The first key of a configured set is the signing key; the rest come from JWT_ADDITIONAL_PUBLIC_KEYS.
            let keys = jwks.keys.enumerated().map { index, key in
                KeyView(kid: key.keyIdentifier?.string ?? "", state: index == 0 ? .active : .published)
            }
            return JSONResponse(KeyList(source: "configuration", keys: keys))
        case .database(let repository):
            let now = Date()
            let stored = try await repository.published(retention: issuer.retention, logger: context.logger)
            let keys = stored.reversed().map { key in
                KeyView(
                    kid: key.kid, state: key.state(at: now), createdAt: key.createdAt, activatesAt: key.activatesAt, retiredAt: key.retiredAt,
                    publishedUntil: key.retiredAt.map { $0 + issuer.retention.inSeconds }
                )
            }
            return JSONResponse(KeyList(source: "database", keys: keys))
        }
    }

    @Sendable func rotate(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<Rotated> {
        let caller = try await requireSuperAdmin(context)
        let issuer = auth.issuer
        guard case .database(let repository) = issuer.source else { throw Self.configured }
        let rotation = try await repository.rotate(delay: issuer.activationDelay, logger: context.logger)
        // This replica publishes the new key at once; the others within their reload interval. The
        // rotation is committed: should this reload fail, the next periodic one picks it up.
        do {
            try await issuer.reload(logger: context.logger)
        } catch {
            context.logger.warning("could not reload the signing keys after a rotation", metadata: ["error": "\(error)"])
        }
        context.logger.notice(
            "signing key rotated",
            metadata: [
                "kid": "\(rotation.kid)", "activates_at": "\(rotation.activatesAt)", "retiring_kid": "\(rotation.retiringKid ?? "")",
                "by": "\(caller)",
            ]
        )
        return JSONResponse(
            Rotated(
                kid: rotation.kid, createdAt: rotation.createdAt, activatesAt: rotation.activatesAt, retiringKid: rotation.retiringKid,
                retiringPublishedUntil: rotation.retiringKid.map { _ in rotation.activatesAt + issuer.retention.inSeconds }
            )
        )
    }

    /// The caller's id, when both their token and their account say super_admin (a token can outlive a demotion).
    @discardableResult
    private func requireSuperAdmin(_ context: AppRequestContext) async throws -> UUID {
        let identity = try context.requireIdentity()
        guard identity.role == .superAdmin else { throw Self.superAdminsOnly }
        guard let user = try await auth.users.find(id: identity.userUUID, logger: context.logger) else {
            throw AppError.unauthorized("User no longer exists", code: "INVALID_TOKEN")
        }
        guard (identity.ver ?? 0) >= user.tokenVersion else { throw AuthController.revoked }
        guard user.role == .superAdmin else { throw Self.superAdminsOnly }
        return user.id
    }

    static let superAdminsOnly = RoleRules.notAllowed("Only a super_admin manages signing keys")

    static let configured = AppError(
        .conflict, code: "SIGNING_KEY_CONFIGURED",
        detail: "The signing key comes from JWT_SIGNING_KEY; rotate it in the deployment's configuration (see the README)"
    )
}
