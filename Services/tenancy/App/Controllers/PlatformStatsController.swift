import Foundation
import HTTPTypes
import Hummingbird
import InternalAPI
import Logging
import ServiceCore

/// `GET /api/admin/dashboard/stats` (super_admins) and `GET /api/admin/tenants/{id}/usage`
/// (the tenant's admins and owners, and super_admins). Tenant counts are tenancy's own; message
/// and session counts are chat's, asked of it; what nobody records (requests, cost) is reported
/// as unavailable, never made up.
struct PlatformStatsController: Sendable {
    let tenants: any AdminTenantRepository
    let chat: InternalClient

    struct DashboardStats: Codable, Sendable {
        var totalTenants: Int
        var activeTenants: Int
        var trialTenants: Int
        var suspendedTenants: Int
        /// Registered since 00:00 UTC.
        var newTenantsToday: Int
        /// Messages stored by chat since 00:00 UTC; absent when chat could not be asked.
        var messagesToday: Int?
        /// Widget sessions started since 00:00 UTC; absent when chat could not be asked.
        var sessionsToday: Int?
        /// Seed 000's request and cost totals: not recorded anywhere yet, so always absent.
        var totalRequestsToday: Int?
        var totalCostToday: Double?
        /// The fields above that are absent, and so not known.
        var unavailable: [String]
    }

    struct Usage: Codable, Sendable {
        var tenantId: String
        var days: Int
        var monthlyMessageQuota: Int
        var totalMessages: Int
        var totalSessions: Int
        /// One entry per UTC day of the window, oldest first.
        var daily: [ChatUsage.Day]
    }

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        group.get("dashboard/stats", use: dashboard)
        group.get("tenants/:tenantID/usage", use: usage)
    }

    @Sendable func dashboard(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<DashboardStats> {
        _ = try TenantAccess.requireSuperAdmin(context)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let counts = try await tenants.counts(since: calendar.startOfDay(for: Date()), logger: context.logger)
        var unavailable = ["total_requests_today", "total_cost_today"]
        var today: ChatUsage.Day?
        do {
            today = try await chat.send(.get, "/internal/usage?days=1", as: ChatUsage.self, logger: context.logger).days.last
        } catch {
            context.logger.warning("chat's usage unavailable for the dashboard", metadata: ["error": "\(error)"])
            unavailable.insert(contentsOf: ["messages_today", "sessions_today"], at: 0)
        }
        let byStatus = counts.byStatus
        return JSONResponse(
            DashboardStats(
                totalTenants: byStatus.values.reduce(0, +), activeTenants: byStatus[.active] ?? 0, trialTenants: byStatus[.trial] ?? 0,
                suspendedTenants: byStatus[.suspended] ?? 0, newTenantsToday: counts.createdSince, messagesToday: today?.messages,
                sessionsToday: today?.sessions, unavailable: unavailable
            )
        )
    }

    @Sendable func usage(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<Usage> {
        let id = try TenantAccess.managedTenant(context)
        var days = 30
        if let raw = request.uri.queryParameters["days"] {
            guard let value = Int(String(raw)), (1...90).contains(value) else { throw AppError.validation(["days": ["must be 1 to 90"]]) }
            days = value
        }
        guard let tenant = try await tenants.find(id, logger: context.logger) else { throw TenantAccess.notFound }
        let usage: ChatUsage
        do {
            usage = try await chat.send(
                .get, "/internal/usage?days=\(days)&tenant_id=\(id.uuidString.lowercased())", as: ChatUsage.self, logger: context.logger
            )
        } catch let error as InternalCallError {
            throw error.publicError
        }
        return JSONResponse(
            Usage(
                tenantId: id.uuidString.lowercased(), days: days, monthlyMessageQuota: tenant.monthlyMessageQuota,
                totalMessages: usage.days.reduce(0) { $0 + $1.messages }, totalSessions: usage.days.reduce(0) { $0 + $1.sessions },
                daily: usage.days
            )
        )
    }
}
