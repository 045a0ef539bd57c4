import Foundation
import HTTPTypes
import Hummingbird
import Logging
import ServiceCore

/// `/api/auth/api-keys`: a tenant's API keys, made, listed and revoked by its admins and above.
/// A key acts for the user who made it, with the key's role but never more than that user's
/// current one; the gateway exchanges it for a short-lived access token (`GatewayAPIKeysController`).
struct APIKeysController: Sendable {
    let verifier: AccessTokenVerifier
    let keys: any APIKeyRepository
    /// Keys in use (neither revoked nor expired) a tenant may have at once.
    let perTenantLimit: Int

    struct CreateRequest: Decodable {
        var name: String
        /// The key's role; the maker's own when absent, never above it.
        var role: String?
        /// Days until the key stops working; never when absent.
        var expiresInDays: Int?
    }

    /// A key as listed; `secret` only in the answer that made it.
    struct APIKeyView: Codable, Sendable {
        var id: String
        var name: String
        var role: String
        var prefix: String
        var lastFour: String
        var createdBy: String
        var createdAt: Date
        var expiresAt: Date?
        var lastUsedAt: Date?
        var secret: String?

        init(_ key: APIKeyRecord, secret: APIKeySecret? = nil) {
            self.id = key.id.lowercased
            self.name = key.name
            self.role = key.role.rawValue
            self.prefix = key.prefix
            self.lastFour = key.lastFour
            self.createdBy = key.createdBy.lowercased
            self.createdAt = key.createdAt
            self.expiresAt = key.expiresAt
            self.lastUsedAt = key.lastUsedAt
            self.secret = secret?.value
        }
    }

    struct APIKeyList: Codable, Sendable {
        var apiKeys: [APIKeyView]
    }

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        let keys = group.group("api-keys").add(middleware: JWTAuthMiddleware(verifier: verifier))
        keys.post(use: create)
        keys.get(use: list)
        keys.delete(":keyID", use: revoke)
    }

    @Sendable func create(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<APIKeyView> {
        let identity = try context.requireIdentity()
        let actor = Actor(identity)
        guard RoleRules.mayManageAPIKeys(actor.role) else { throw Self.managersOnly }
        let input = try await request.decodeJSON(as: CreateRequest.self, context: context)
        let name = input.name.trimmingCharacters(in: .whitespacesAndNewlines)
        var problems: [String: [String]] = [:]
        // The length as sent, as the published schema counts it (`maxLength`).
        if input.name.unicodeScalars.count > Self.maxNameLength {
            problems["name"] = ["must be at most \(Self.maxNameLength) characters"]
        } else if input.name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            problems["name"] = ["must not contain control characters"]
        } else if name.isEmpty {
            problems["name"] = ["is required"]
        }
        var role = actor.role
        if let raw = input.role {
            if let asked = Role(rawValue: raw) { role = asked } else { problems["role"] = ["must be one of \(UsersController.roleNames)"] }
        }
        if let days = input.expiresInDays, !(1...Self.maxLifetimeDays).contains(days) {
            problems["expires_in_days"] = ["must be 1 to \(Self.maxLifetimeDays)"]
        }
        guard problems.isEmpty else { throw AppError.validation(problems) }
        guard role <= actor.role else {
            throw RoleRules.notAllowed("A key cannot have a role above your own")
        }
        // A key that could make keys would outlive its own revocation through them.
        if let session = identity.sid.flatMap(UUID.init(uuidString:)), try await keys.isKey(session, logger: context.logger) {
            throw AppError(.forbidden, code: "API_KEY_NOT_ALLOWED", detail: "API keys are made from a signed-in session, not with an API key")
        }
        let secret = APIKeySecret.generate()
        guard
            let key = try await keys.create(
                NewAPIKey(tenantID: actor.tenantID, createdBy: actor.id, name: name, role: role, expiresInDays: input.expiresInDays, secret: secret),
                limit: perTenantLimit, logger: context.logger
            )
        else {
            throw AppError.conflict(
                "This tenant already has \(perTenantLimit) API keys in use; revoke one first", code: "API_KEY_LIMIT_REACHED"
            )
        }
        context.logger.notice("api key created", metadata: ["api_key_id": "\(key.id)", "role": "\(role.rawValue)", "by": "\(actor.id)"])
        // The secret is in this answer only: no cache may keep it.
        return JSONResponse(APIKeyView(key, secret: secret), status: .created, headers: [.cacheControl: "no-store"])
    }

    @Sendable func list(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<APIKeyList> {
        let actor = try Actor(context.requireIdentity())
        guard RoleRules.mayManageAPIKeys(actor.role) else { throw Self.managersOnly }
        let found = try await keys.list(tenant: actor.tenantID, logger: context.logger)
        return JSONResponse(APIKeyList(apiKeys: found.map { APIKeyView($0) }))
    }

    @Sendable func revoke(_ request: Request, context: AppRequestContext) async throws -> Response {
        let actor = try Actor(context.requireIdentity())
        guard RoleRules.mayManageAPIKeys(actor.role) else { throw Self.managersOnly }
        // Another tenant's key is as unknown as a key that never existed.
        guard let id = context.parameters.get("keyID").flatMap(UUID.init(uuidString:)),
            try await keys.revoke(id, tenant: actor.tenantID, logger: context.logger)
        else { throw Self.notFound }
        context.logger.notice("api key revoked", metadata: ["api_key_id": "\(id)", "by": "\(actor.id)"])
        return Response(status: .noContent)
    }

    static let maxNameLength = 100
    static let maxLifetimeDays = 365

    static let managersOnly = RoleRules.notAllowed("Only admins, owners and super_admins manage API keys")

    static let notFound = AppError(.notFound, code: "API_KEY_NOT_FOUND", detail: "API key not found")
}
