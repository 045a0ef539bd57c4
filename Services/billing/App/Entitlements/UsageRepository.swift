import Foundation
import InternalAPI
import Logging
import PostgresNIO
import ServiceCore

/// Message usage per tenant per period (`usage_counters`, migration 61).
protocol UsageRepository: Sendable {
    /// Messages counted for `tenantID` in exactly `period`.
    func used(tenantID: UUID, period: UsagePeriod, logger: Logger) async throws -> Int
    /// Counts one answered message in the period holding `answeredAt`, on the connection of the
    /// transaction that records the event as processed (so it counts exactly once).
    func count(_ message: MessageAnswered, on connection: PostgresConnection, logger: Logger) async throws
}

struct PostgresUsageRepository: UsageRepository {
    let client: Database

    func used(tenantID: UUID, period: UsagePeriod, logger: Logger) async throws -> Int {
        let rows = try await client.query(
            """
            SELECT messages FROM usage_counters
            WHERE tenant_id = \(tenantID) AND period_start = \(period.start) AND period_end = \(period.end)
            """,
            logger: logger
        )
        return try rows.decode(Int.self).first ?? 0
    }

    func count(_ message: MessageAnswered, on connection: PostgresConnection, logger: Logger) async throws {
        let rows = try await connection.query(
            """
            SELECT status, created_at, trial_ends_at, current_period_start, current_period_end
            FROM subscriptions WHERE tenant_id = \(message.tenantId)
            """,
            logger: logger
        )
        var facts: UsagePeriod.Facts?
        for try await (status, created, trialEnds, periodStart, periodEnd) in rows.decode((String, Date, Date?, Date?, Date?).self) {
            facts = UsagePeriod.Facts(status: status, createdAt: created, trialEndsAt: trialEnds, currentPeriodStart: periodStart, currentPeriodEnd: periodEnd)
        }
        let period = UsagePeriod.holding(message.answeredAt, subscription: facts)
        try await connection.query(
            """
            INSERT INTO usage_counters (tenant_id, period_start, period_end, messages)
            VALUES (\(message.tenantId), \(period.start), \(period.end), 1)
            ON CONFLICT (tenant_id, period_start, period_end)
            DO UPDATE SET messages = usage_counters.messages + 1, updated_at = now()
            """,
            logger: logger
        )
    }
}
