import Foundation
import HTTPTypes
import Logging
import PostgresNIO
import ServiceCore

struct Plan: Sendable, Codable {
    var id: String
    var title: String
    var description: String
    var price: Int
    var currency: String
    var monthlyMessageQuota: Int
}

struct Subscription: Sendable {
    var id: UUID
    var tenantID: UUID
    var plan: String
    var status: String
    var trialEndsAt: Date?
    var currentPeriodStart: Date?
    var currentPeriodEnd: Date?
    var monthlyMessageQuota: Int
    var createdAt: Date
    /// Cancelled for the end of the paid period: `active` (with access) until `currentPeriodEnd`.
    var cancelAtPeriodEnd: Bool = false
    /// A downgrade scheduled for the period's end.
    var pendingPlan: String? = nil
}

protocol BillingRepository: Sendable {
    func publicPlans(logger: Logger) async throws -> [Plan]
    func subscription(tenantID: UUID, logger: Logger) async throws -> Subscription?
    /// Starts a trial unless the tenant already has a subscription; returns it and whether it is new.
    /// 410 `TRIAL_WITHDRAWN` once `deleteSubscription` withdrew the tenant's trial.
    func startTrial(tenantID: UUID, endsAt: Date, logger: Logger) async throws -> (Subscription, created: Bool)
    /// The undo of a failed registration: removes the subscription and leaves a tombstone, so that a
    /// trial start arriving late (its call timed out, its write did not) creates nothing.
    func deleteSubscription(tenantID: UUID, logger: Logger) async throws
}

struct PostgresBillingRepository: BillingRepository {
    let client: Database

    func publicPlans(logger: Logger) async throws -> [Plan] {
        let rows = try await client.query(
            """
            SELECT id, title, description, price, currency, monthly_message_quota
            FROM plans WHERE is_public ORDER BY position
            """,
            logger: logger
        )
        var plans: [Plan] = []
        for (id, title, description, price, currency, quota) in try rows.decode((String, String, String, Int, String, Int).self) {
            plans.append(Plan(id: id, title: title, description: description, price: price, currency: currency, monthlyMessageQuota: quota))
        }
        return plans
    }

    func subscription(tenantID: UUID, logger: Logger) async throws -> Subscription? {
        let rows = try await client.query(
            """
            SELECT s.id, s.tenant_id, s.plan, s.status, s.trial_ends_at, s.current_period_start, s.current_period_end,
                   p.monthly_message_quota, s.created_at, s.cancel_at_period_end, s.pending_plan
            FROM subscriptions s JOIN plans p ON p.id = s.plan
            WHERE s.tenant_id = \(tenantID)
            """,
            logger: logger
        )
        for (id, tenant, plan, status, trialEnds, periodStart, periodEnd, quota, created, cancelAtPeriodEnd, pendingPlan) in try rows.decode(
            (UUID, UUID, String, String, Date?, Date?, Date?, Int, Date, Bool, String?).self
        ) {
            return Subscription(
                id: id, tenantID: tenant, plan: plan, status: status, trialEndsAt: trialEnds, currentPeriodStart: periodStart,
                currentPeriodEnd: periodEnd, monthlyMessageQuota: quota, createdAt: created, cancelAtPeriodEnd: cancelAtPeriodEnd,
                pendingPlan: pendingPlan
            )
        }
        return nil
    }

    func startTrial(tenantID: UUID, endsAt: Date, logger: Logger) async throws -> (Subscription, created: Bool) {
        let created: Bool? = try await client.transaction(logger: logger) { connection in
            try await Self.lockTrial(of: tenantID, on: connection, logger: logger)
            let withdrawn = try await connection.query("SELECT 1 FROM withdrawn_trials WHERE tenant_id = \(tenantID)", logger: logger).collect()
            guard withdrawn.isEmpty else { return nil }
            let rows = try await connection.query(
                """
                INSERT INTO subscriptions (id, tenant_id, plan, status, trial_ends_at)
                VALUES (\(UUID()), \(tenantID), 'trial', 'trialing', \(endsAt))
                ON CONFLICT (tenant_id) DO NOTHING
                RETURNING id
                """,
                logger: logger
            ).collect()
            return !rows.isEmpty
        }
        guard let created else {
            throw AppError(.gone, code: "TRIAL_WITHDRAWN", detail: "This tenant's registration was undone; no trial was started")
        }
        guard let subscription = try await subscription(tenantID: tenantID, logger: logger) else {
            throw AppError.internalError("subscription vanished after insert")
        }
        return (subscription, created)
    }

    func deleteSubscription(tenantID: UUID, logger: Logger) async throws {
        try await client.transaction(logger: logger) { connection in
            try await Self.lockTrial(of: tenantID, on: connection, logger: logger)
            try await connection.query("INSERT INTO withdrawn_trials (tenant_id) VALUES (\(tenantID)) ON CONFLICT DO NOTHING", logger: logger)
            try await connection.query("DELETE FROM subscriptions WHERE tenant_id = \(tenantID)", logger: logger)
        }
    }

    /// Serialises starting and withdrawing one tenant's trial: without it, a start whose insert is
    /// not yet committed would be missed by a concurrent withdrawal's delete, and outlive it.
    static func lockTrial(of tenantID: UUID, on connection: PostgresConnection, logger: Logger) async throws {
        _ = try await connection.query("SELECT pg_advisory_xact_lock(hashtextextended(\(tenantID.uuidString), 7))", logger: logger).collect()
    }
}
