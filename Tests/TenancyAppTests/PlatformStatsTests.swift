import Foundation
import HTTPTypes
import InternalAPI
import NIOHTTP1
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

@testable import TenancyApp

/// `GET /api/admin/dashboard/stats` and `GET /api/admin/tenants/{id}/usage`: tenancy's own counts,
/// chat's message and session counts per day (asked of chat), and what is not known said so.
@Suite("tenancy dashboard and usage", .timeLimit(.minutes(3)))
struct PlatformStatsTests {
    typealias H = AdminHarness
    typealias Stats = PlatformStatsController.DashboardStats
    typealias Usage = PlatformStatsController.Usage

    /// A session of `tenant` in chat's database started `daysAgo` days ago, with `messages` messages (half the user's).
    static func chatHistory(_ stack: TestStack, tenant: UUID, daysAgo: Int, messages: Int) async throws {
        let session = "s_\(UUID().uuidString.lowercased())"
        try await TestPostgres.withClient(stack.databases[.chat]!) { client in
            let at = Date().addingTimeInterval(-Double(daysAgo) * 86_400)
            try await client.query(
                """
                INSERT INTO widget_sessions (id, tenant_id, first_seen_at, expires_at)
                VALUES (\(session), \(tenant), \(at), \(at.addingTimeInterval(86_400 * 30)))
                """
            )
            for index in 0..<messages {
                try await client.query(
                    """
                    INSERT INTO messages (id, session_id, tenant_id, role, content, created_at)
                    VALUES (\(UUID()), \(session), \(tenant), \(index % 2 == 0 ? "user" : "assistant"), 'hello', \(at))
                    """
                )
            }
        }
    }

    @Test func statsAndUsageCountWhatTenancyAndChatStore() async throws {
        try await TestStack.with(.auth, .tenancy, .chat) { stack in
            let acme = try await H.seed(stack, name: "Acme")
            let other = try await H.seed(stack, name: "Other", status: "suspended")
            try await H.seed(stack, name: "Trial", status: "trial")
            try await H.seed(stack, name: "Half", status: "provisioning")
            try await Self.chatHistory(stack, tenant: acme, daysAgo: 0, messages: 4)
            try await Self.chatHistory(stack, tenant: acme, daysAgo: 2, messages: 3)
            try await Self.chatHistory(stack, tenant: acme, daysAgo: 40, messages: 5)
            try await Self.chatHistory(stack, tenant: other, daysAgo: 0, messages: 2)
            let admin = try await H.token(stack, .superAdmin)

            let stats = try await H.send(stack, .GET, "/api/admin/dashboard/stats", token: admin)
            #expect(stats.status == 200, "\(stats.text)")
            let body = try stats.json(Stats.self)
            #expect(body.totalTenants == 3 && body.activeTenants == 1 && body.trialTenants == 1 && body.suspendedTenants == 1)
            #expect(body.newTenantsToday == 3)
            #expect(body.messagesToday == 6 && body.sessionsToday == 2)
            #expect(body.totalRequestsToday == nil && body.totalCostToday == nil)
            #expect(body.unavailable == ["total_requests_today", "total_cost_today"])

            let usage = try await H.send(stack, .GET, "/api/admin/tenants/\(acme)/usage?days=3", token: try await H.token(stack, .admin, of: acme))
            #expect(usage.status == 200, "\(usage.text)")
            let report = try usage.json(Usage.self)
            #expect(report.days == 3 && report.daily.count == 3 && report.monthlyMessageQuota == 1000)
            #expect(report.daily.map(\.messages) == [3, 0, 4] && report.daily.map(\.userMessages) == [2, 0, 2] && report.daily.map(\.sessions) == [1, 0, 1])
            #expect(report.totalMessages == 7 && report.totalSessions == 2)
            let today = ISO8601DateFormatter.string(from: Date(), timeZone: TimeZone(identifier: "UTC")!, formatOptions: [.withFullDate])
            #expect(report.daily.last?.date == today)
            // The default window is 30 days: the 40-day-old session is outside it.
            let month = try await H.send(stack, .GET, "/api/admin/tenants/\(acme)/usage", token: admin).json(Usage.self)
            #expect(month.days == 30 && month.daily.count == 30 && month.totalMessages == 7)
            #expect(try await H.send(stack, .GET, "/api/admin/tenants/\(acme)/usage?days=90", token: admin).json(Usage.self).totalMessages == 12)

            for days in ["0", "91", "-1", "abc", "1.5", ""] {
                H.expectError(try await H.send(stack, .GET, "/api/admin/tenants/\(acme)/usage?days=\(days)", token: admin), 422, "VALIDATION_ERROR", fields: ["days"])
            }
            H.expectError(try await H.send(stack, .GET, "/api/admin/tenants/\(UUID())/usage", token: admin), 404, "TENANT_NOT_FOUND")
            H.expectError(try await H.send(stack, .GET, "/api/admin/tenants/\(acme)/usage", token: try await H.token(stack, .user, of: acme)), 403, "ROLE_NOT_ALLOWED")

            // chat's usage route answers tenancy alone.
            for caller in [ServiceName.auth, .gateway] {
                let refused = try await stack.callInternal(.get, .chat, "/internal/usage?days=1", as: caller)
                H.expectError(refused, 401, "CALLER_NOT_ALLOWED")
            }

            // chat away: the dashboard still answers tenancy's counts and says what it lacks; usage cannot.
            await stack.stop(.chat)
            let partial = try await H.send(stack, .GET, "/api/admin/dashboard/stats", token: admin).json(Stats.self)
            #expect(partial.totalTenants == 3 && partial.messagesToday == nil && partial.sessionsToday == nil)
            #expect(partial.unavailable == ["messages_today", "sessions_today", "total_requests_today", "total_cost_today"])
            H.expectError(try await H.send(stack, .GET, "/api/admin/tenants/\(acme)/usage", token: admin), 503, "UPSTREAM_UNAVAILABLE")
        }
    }
}
