import Foundation
import HTTPTypes
import Hummingbird
import Logging
import InternalAPI
import NIOCore
import ServiceCore

/// Seed 000's tenant theme: public `GET /api/tenants/{slug}/theme` for the widget, and
/// `GET/PUT /api/admin/tenants/{tenantID}/theme` for the tenant's managers.
struct ThemeController: Sendable {
    let themes: any ThemeRepository
    let verifier: AccessTokenVerifier

    /// Widgets load the theme on every page view; a minute of staleness after a change is fine.
    static let publicCacheControl = "public, max-age=60"

    func addPublicRoutes(to group: RouterGroup<AppRequestContext>) {
        group.get(":slug/theme", use: publicTheme)
    }

    func addAdminRoutes(to group: RouterGroup<AppRequestContext>) {
        let managers = group.group().add(middleware: JWTAuthMiddleware(verifier: verifier))
        managers.get(":tenantID/theme", use: adminTheme)
        managers.put(":tenantID/theme", use: updateTheme)
    }

    /// Only `trial` and `active` tenants answer: a suspended or half-registered tenant's widget does
    /// not run, so its theme is as unknown as a slug nobody has.
    @Sendable func publicTheme(_ request: Request, context: AppRequestContext) async throws -> Response {
        guard let slug = context.parameters.get("slug"), slug.utf8.count <= 100,
            let overrides = try await themes.publicOverrides(slug: slug, logger: context.logger)
        else { throw TenantAccess.notFound }
        let body = try JSONCoding.encoder.encode(JSONValue.object(ThemeFields.resolved(overrides)))
        return CacheableResponse.make(
            ByteBuffer(bytes: body), contentType: "application/json; charset=utf-8", cacheControl: Self.publicCacheControl, request: request
        )
    }

    /// chat's: the resolved theme of any tenant, whatever its status (chat applies its `attachments_*`).
    func addInternalRoutes(to group: RouterGroup<AppRequestContext>) {
        group.get("tenants/:tenantID/theme", use: internalTheme)
    }

    @Sendable func internalTheme(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<JSONValue> {
        guard let tenantID = context.parameters.get("tenantID").flatMap(UUID.init(uuidString:)),
            let overrides = try await themes.overrides(tenantID: tenantID, logger: context.logger)
        else { throw TenantAccess.notFound }
        return JSONResponse(.object(ThemeFields.resolved(overrides)))
    }

    @Sendable func adminTheme(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<JSONValue> {
        let tenantID = try TenantAccess.managedTenant(context)
        guard let overrides = try await themes.overrides(tenantID: tenantID, logger: context.logger) else { throw TenantAccess.notFound }
        return JSONResponse(.object(ThemeFields.resolved(overrides)))
    }

    /// A partial update: only the fields sent change; `null` puts a field back to its default.
    /// Every field is checked before anything is stored, so one bad field changes nothing.
    @Sendable func updateTheme(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<JSONValue> {
        let tenantID = try TenantAccess.managedTenant(context)
        let update = try await request.decodeJSON(as: [String: JSONValue].self, context: context)
        let (set, reset) = try ThemeFields.validated(update)
        guard let overrides = try await themes.update(tenantID: tenantID, set: set, reset: reset, logger: context.logger) else {
            throw TenantAccess.notFound
        }
        context.logger.notice("theme updated", metadata: ["tenant_id": "\(tenantID)", "fields": "\((set.keys + reset).sorted())"])
        return JSONResponse(.object(ThemeFields.resolved(overrides)))
    }
}
