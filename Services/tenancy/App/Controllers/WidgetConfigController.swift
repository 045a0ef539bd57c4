import Foundation
import HTTPTypes
import Hummingbird
import Logging
import ServiceCore

/// `GET/PUT /api/admin/widgets/{tenant_id}` (the tenant's admins, owners, super_admins) and the
/// public `GET /api/public/widgets/{tenant_id}/config` a browser widget loads before it opens.
struct WidgetConfigController: Sendable {
    let widgets: JSONSettingsTable

    /// The config's fields, flat, with the tenant's id; for admins, when it last changed (absent while
    /// everything is a default); for the public, the tenant's slug (`X-Tenant-Slug` of `POST /api/sessions/init`).
    struct View: Encodable, Sendable {
        var tenantId: String
        var tenantSlug: String?
        var config: WidgetConfig
        var updatedAt: Date?

        enum CodingKeys: String, CodingKey {
            case tenantId, tenantSlug, updatedAt
        }

        func encode(to encoder: any Encoder) throws {
            try config.encode(to: encoder)
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(tenantId, forKey: .tenantId)
            try container.encodeIfPresent(tenantSlug, forKey: .tenantSlug)
            try container.encodeIfPresent(updatedAt, forKey: .updatedAt)
        }
    }

    func addRoutes(admin: RouterGroup<AppRequestContext>, open: RouterGroup<AppRequestContext>) {
        admin.get(":tenantID", use: show)
        admin.put(":tenantID", use: update)
        open.get(":tenantID/config", use: publicConfig)
    }

    @Sendable func show(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<View> {
        let tenantID = try TenantAccess.managedTenant(context)
        guard let stored = try await widgets.read(tenantID: tenantID, defaults: WidgetConfig.defaultsJSON, logger: context.logger) else {
            throw TenantAccess.notFound
        }
        return JSONResponse(View(tenantId: tenantID.uuidString.lowercased(), config: try Self.decode(stored.json), updatedAt: stored.updatedAt))
    }

    @Sendable func update(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<View> {
        let tenantID = try TenantAccess.managedTenant(context)
        let patch = try await request.decodeJSON(as: WidgetConfig.Update.self, context: context).validatedPatch()
        guard let stored = try await widgets.merge(tenantID: tenantID, patch: patch, defaults: WidgetConfig.defaultsJSON, logger: context.logger)
        else { throw TenantAccess.notFound }
        context.logger.info("widget configured", metadata: ["tenant_id": "\(tenantID)"])
        return JSONResponse(View(tenantId: tenantID.uuidString.lowercased(), config: try Self.decode(stored.json), updatedAt: stored.updatedAt))
    }

    /// Anyone may read it (the widget runs on the tenant's public site); a suspended tenant's widget
    /// is as unknown as a tenant that never existed.
    @Sendable func publicConfig(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<View> {
        let tenantID = try TenantAccess.tenantParameter(context)
        guard let stored = try await widgets.read(tenantID: tenantID, defaults: WidgetConfig.defaultsJSON, logger: context.logger),
            stored.tenantStatus != "suspended"
        else { throw TenantAccess.notFound }
        return JSONResponse(
            View(tenantId: tenantID.uuidString.lowercased(), tenantSlug: stored.tenantSlug, config: try Self.decode(stored.json)),
            headers: [.cacheControl: "public, max-age=60"]
        )
    }

    static func decode(_ json: String) throws -> WidgetConfig {
        try JSONCoding.decoder.decode(WidgetConfig.self, from: Data(json.utf8))
    }
}
