import Foundation
import HTTPTypes
import Hummingbird
import InternalAPI
import Logging
import ServiceCore

/// `/api/sessions/*`: chat widget sessions for a tenant's end users.
struct SessionsController: Sendable {
    let sessions: any SessionRepository
    let directory: TenantDirectory
    let maxAgeDays: Int

    struct InitRequest: Decodable {
        var externalUserId: String?
        var externalUserEmail: String?
        var externalUserName: String?
        var userAgent: String?
    }

    struct InitResponse: Codable, Sendable {
        var sessionId: String
        var expiresAt: Date
    }

    struct ValidateResponse: Codable, Sendable {
        var valid: Bool
    }

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        group.post("init", use: initialize)
        group.post("validate", use: validate)
    }

    @Sendable func initialize(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<InitResponse> {
        guard let slug = request.headers[.xTenantSlug]?.trimmingCharacters(in: .whitespaces), !slug.isEmpty else {
            throw AppError.badRequest("The X-Tenant-Slug header is required", code: "TENANT_SLUG_REQUIRED")
        }
        let body = try await request.decodeOptionalJSON(as: InitRequest.self, context: context) ?? InitRequest()
        var problems: [String: [String]] = [:]
        for (field, value, limit) in [
            ("external_user_id", body.externalUserId, 256), ("external_user_email", body.externalUserEmail, 254),
            ("external_user_name", body.externalUserName, 200), ("user_agent", body.userAgent, 512),
        ] where (value?.unicodeScalars.count ?? 0) > limit {
            problems[field] = ["must be at most \(limit) characters"]
        }
        guard problems.isEmpty else { throw AppError.validation(problems) }

        guard let tenant = try await directory.tenant(slug: slug.lowercased(), logger: context.logger) else {
            throw AppError.notFound("Unknown tenant", code: "TENANT_NOT_FOUND")
        }
        guard tenant.status != "suspended" else { throw AppError.forbidden("This account is suspended") }
        try Self.checkOrigin(request.headers[.origin], allowed: tenant.allowedOrigins)
        let session = try await sessions.create(
            NewSession(
                tenantID: tenant.id, externalUserID: body.externalUserId, externalUserEmail: body.externalUserEmail,
                externalUserName: body.externalUserName, userAgent: body.userAgent ?? request.headers[.userAgent].map { String($0.prefix(512)) },
                expiresAt: Date().addingTimeInterval(TimeInterval(maxAgeDays) * 86_400)
            ),
            logger: context.logger
        )
        return JSONResponse(InitResponse(sessionId: session.id, expiresAt: session.expiresAt), status: .created)
    }

    /// A page may start a tenant's sessions only from an origin the tenant lists (`allowed_origins`,
    /// set in its administration); a tenant that lists none is open to every page. A request without
    /// `Origin` does not come from a page's script, which is what the list guards against.
    static func checkOrigin(_ origin: String?, allowed: [String]?) throws {
        guard let origin, let allowed, !allowed.isEmpty, !allowed.contains(origin.lowercased()) else { return }
        throw AppError(.forbidden, code: "ORIGIN_NOT_ALLOWED", detail: "This site may not start chat sessions for this account")
    }

    @Sendable func validate(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<ValidateResponse> {
        guard let id = request.headers[.xSessionID], !id.isEmpty else {
            throw AppError.badRequest("The X-Session-ID header is required", code: "SESSION_REQUIRED")
        }
        guard PostgresSessionRepository.isWellFormed(id), let session = try await sessions.active(id: id, logger: context.logger) else {
            return JSONResponse(ValidateResponse(valid: false))
        }
        // A suspended (or removed) tenant's sessions stop too. Tenancy unreachable: the session alone decides.
        do {
            guard let tenant = try await directory.tenant(id: session.tenantID, logger: context.logger), tenant.status != "suspended" else {
                return JSONResponse(ValidateResponse(valid: false))
            }
        } catch {
            context.logger.warning("session validated without its tenant's status", metadata: ["error": "\(error)"])
        }
        return JSONResponse(ValidateResponse(valid: true))
    }
}
