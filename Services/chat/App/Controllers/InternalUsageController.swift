import Foundation
import Hummingbird
import InternalAPI
import Logging
import PostgresNIO
import ServiceCore

/// `GET /internal/usage?days=&tenant_id=`, for tenancy's administration alone: messages stored and
/// widget sessions started per UTC day over the last `days` days (today included), for one tenant
/// or, without `tenant_id`, for all.
struct InternalUsageController: Sendable {
    let database: Database

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        group.get("usage", use: usage)
    }

    @Sendable func usage(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<ChatUsage> {
        let query = request.uri.queryParameters
        var problems: [String: [String]] = [:]
        var days = 30
        if let raw = query["days"] {
            if let value = Int(String(raw)), (1...366).contains(value) { days = value } else { problems["days"] = ["must be 1 to 366"] }
        }
        var tenant: UUID?
        if let raw = query["tenant_id"] {
            tenant = UUID(uuidString: String(raw))
            if tenant == nil { problems["tenant_id"] = ["must be a tenant id"] }
        }
        guard problems.isEmpty else { throw AppError.validation(problems) }
        return JSONResponse(ChatUsage(tenantId: tenant, days: try await Self.daily(days: days, tenant: tenant, database: database, logger: context.logger)))
    }

    static func daily(days: Int, tenant: UUID?, database: Database, logger: Logger) async throws -> [ChatUsage.Day] {
        let rows = try await database.query(
            """
            WITH window_days AS (
                SELECT generate_series(today - (\(days)::int - 1), today, INTERVAL '1 day')::date AS day
                FROM (SELECT (now() AT TIME ZONE 'UTC')::date AS today) t
            ), since AS (
                SELECT min(day)::timestamp AT TIME ZONE 'UTC' AS at FROM window_days
            ), m AS (
                SELECT (created_at AT TIME ZONE 'UTC')::date AS day, count(*)::int AS messages,
                       (count(*) FILTER (WHERE role = 'user'))::int AS user_messages
                FROM messages, since WHERE created_at >= since.at AND (\(tenant)::uuid IS NULL OR tenant_id = \(tenant))
                GROUP BY 1
            ), s AS (
                SELECT (first_seen_at AT TIME ZONE 'UTC')::date AS day, count(*)::int AS sessions
                FROM widget_sessions, since WHERE first_seen_at >= since.at AND (\(tenant)::uuid IS NULL OR tenant_id = \(tenant))
                GROUP BY 1
            )
            SELECT to_char(w.day, 'YYYY-MM-DD'), coalesce(m.messages, 0), coalesce(m.user_messages, 0), coalesce(s.sessions, 0)
            FROM window_days w LEFT JOIN m ON m.day = w.day LEFT JOIN s ON s.day = w.day
            ORDER BY w.day
            """,
            logger: logger
        )
        return try rows.decode((String, Int, Int, Int).self).map { ChatUsage.Day(date: $0, messages: $1, userMessages: $2, sessions: $3) }
    }
}
