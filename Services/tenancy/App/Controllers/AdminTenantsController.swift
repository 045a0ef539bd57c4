import Foundation
import HTTPTypes
import Hummingbird
import InternalAPI
import Logging
import ServiceCore

/// `/api/admin/tenants*`: platform administration of tenants. Listing and creating are for
/// super_admins; one tenant is read and changed by super_admins and by its own admins and owners,
/// who change only its name and allowed origins (status and limits are the platform's).
struct AdminTenantsController: Sendable {
    let tenants: any AdminTenantRepository
    let creation: TenantCreation

    struct TenantView: Codable, Sendable, Equatable {
        var id: String
        var name: String
        var slug: String
        var status: String
        var allowedOrigins: [String]
        var rateLimitPerMinute: Int
        var monthlyMessageQuota: Int
        var createdAt: Date
        var updatedAt: Date

        init(_ tenant: TenantRecord) {
            self.id = tenant.id.uuidString.lowercased()
            self.name = tenant.name
            self.slug = tenant.slug
            self.status = tenant.status.rawValue
            self.allowedOrigins = tenant.allowedOrigins
            self.rateLimitPerMinute = tenant.rateLimitPerMinute
            self.monthlyMessageQuota = tenant.monthlyMessageQuota
            self.createdAt = tenant.createdAt
            self.updatedAt = tenant.updatedAt
        }
    }

    struct TenantList: Codable, Sendable {
        var tenants: [TenantView]
        var total: Int
        var limit: Int
        var offset: Int
    }

    struct UpdateRequest: Decodable {
        var name: String?
        var status: String?
        var allowedOrigins: [String]?
        var rateLimitPerMinute: Int?
        var monthlyMessageQuota: Int?
    }

    struct CreateRequest: Decodable {
        var name: String
        var slug: String?
        var ownerEmail: String
        var ownerFullName: String?
        var allowedOrigins: [String]?
        var rateLimitPerMinute: Int?
        var monthlyMessageQuota: Int?
    }

    struct CreatedTenant: Codable, Sendable {
        struct Invitation: Codable, Sendable {
            var invitationId: String
            var email: String
            var expiresAt: Date
        }
        struct Trial: Codable, Sendable {
            var plan: String
            var status: String
            var trialEndsAt: Date?
        }
        var tenant: TenantView
        var ownerInvitation: Invitation
        var subscription: Trial
    }

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        group.get("tenants", use: list)
        group.post("tenants", use: create)
        group.get("tenants/:tenantID", use: show)
        group.put("tenants/:tenantID", use: update)
    }

    @Sendable func list(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<TenantList> {
        _ = try TenantAccess.requireSuperAdmin(context)
        let query = request.uri.queryParameters
        var problems: [String: [String]] = [:]
        let paging = Paging(request, problems: &problems)
        var filter = TenantFilter(status: nil, search: nil, limit: paging.limit, offset: paging.offset)
        filter.status = TenantFields.status(query["status"].map(String.init), problems: &problems)
        if let raw = query["search"].map(String.init) {
            let search = raw.trimmingCharacters(in: .whitespaces)
            if raw.unicodeScalars.count > 100 || raw.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
                problems["search"] = ["must be at most 100 characters, without control characters"]
            } else if !search.isEmpty {
                filter.search = search
            }
        }
        guard problems.isEmpty else { throw AppError.validation(problems) }
        let page = try await tenants.list(filter, logger: context.logger)
        return JSONResponse(TenantList(tenants: page.tenants.map(TenantView.init), total: page.total, limit: filter.limit, offset: filter.offset))
    }

    @Sendable func show(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<TenantView> {
        let id = try TenantAccess.managedTenant(context)
        guard let tenant = try await tenants.find(id, logger: context.logger) else { throw TenantAccess.notFound }
        return JSONResponse(TenantView(tenant))
    }

    @Sendable func update(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<TenantView> {
        let id = try TenantAccess.managedTenant(context)
        let identity = try context.requireIdentity()
        let input = try await request.decodeJSON(as: UpdateRequest.self, context: context)
        var problems: [String: [String]] = [:]
        let changes = TenantChanges(
            name: TenantFields.name(input.name, problems: &problems),
            status: TenantFields.status(input.status, problems: &problems),
            allowedOrigins: TenantFields.allowedOrigins(input.allowedOrigins, problems: &problems),
            rateLimitPerMinute: TenantFields.rateLimit(input.rateLimitPerMinute, problems: &problems),
            monthlyMessageQuota: TenantFields.quota(input.monthlyMessageQuota, problems: &problems)
        )
        guard problems.isEmpty else { throw AppError.validation(problems) }
        let isSuperAdmin = identity.role == .superAdmin
        let updated = try await tenants.update(
            id, changes,
            authorize: { current in
                if !isSuperAdmin, let field = Self.platformFieldChanged(changes, current) {
                    throw TenantAccess.notAllowed("Only super_admins change a tenant's \(field)")
                }
            },
            logger: context.logger
        )
        guard let updated else { throw TenantAccess.notFound }
        context.logger.notice("tenant updated", metadata: ["tenant_id": "\(id)", "by": "\(identity.userUUID)"])
        return JSONResponse(TenantView(updated))
    }

    /// The first field of `changes` that only a super_admin may change and that differs from
    /// `current` (sending back the value it has is no change, so a full form can be saved).
    static func platformFieldChanged(_ changes: TenantChanges, _ current: TenantRecord) -> String? {
        if let status = changes.status, status != current.status { return "status" }
        if let limit = changes.rateLimitPerMinute, limit != current.rateLimitPerMinute { return "rate_limit_per_minute" }
        if let quota = changes.monthlyMessageQuota, quota != current.monthlyMessageQuota { return "monthly_message_quota" }
        return nil
    }

    @Sendable func create(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<CreatedTenant> {
        let identity = try TenantAccess.requireSuperAdmin(context)
        let input = try await request.decodeJSON(as: CreateRequest.self, context: context)
        var problems: [String: [String]] = [:]
        let name = TenantFields.name(input.name, problems: &problems)
        let slug = input.slug ?? name.map(Slug.make(from:)) ?? ""
        if name != nil, let problem = Slug.problem(slug) {
            problems["slug"] = [input.slug == nil ? "derived from the name, \(problem); give one" : problem]
        }
        let email = input.ownerEmail.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        if email.isEmpty || email.unicodeScalars.count > 254 || email.split(separator: "@", omittingEmptySubsequences: false).count != 2 {
            problems["owner_email"] = ["must be a valid email address"]
        }
        let fullName = input.ownerFullName?.trimmingCharacters(in: .whitespacesAndNewlines)
        if let raw = input.ownerFullName, raw.unicodeScalars.count > 200 { problems["owner_full_name"] = ["must be at most 200 characters"] }
        let origins = TenantFields.allowedOrigins(input.allowedOrigins, problems: &problems)
        let rateLimit = TenantFields.rateLimit(input.rateLimitPerMinute, problems: &problems)
        let quota = TenantFields.quota(input.monthlyMessageQuota, problems: &problems)
        guard problems.isEmpty, let name else { throw AppError.validation(problems) }

        let result = try await creation.create(
            NewTenant(
                name: name, slug: slug, allowedOrigins: origins ?? [], rateLimitPerMinute: rateLimit ?? creation.defaultRateLimitPerMinute,
                monthlyMessageQuota: quota ?? TenantCreation.defaultMonthlyMessageQuota
            ),
            ownerEmail: email, ownerFullName: fullName?.isEmpty == false ? fullName : nil, by: identity.userUUID, logger: context.logger
        )
        return JSONResponse(
            CreatedTenant(
                tenant: TenantView(result.tenant),
                ownerInvitation: .init(
                    invitationId: result.invitation.invitationId.uuidString.lowercased(), email: result.invitation.email, expiresAt: result.invitation.expiresAt
                ),
                subscription: .init(plan: result.trial.plan, status: result.trial.status, trialEndsAt: result.trial.trialEndsAt)
            ),
            status: .created
        )
    }
}
