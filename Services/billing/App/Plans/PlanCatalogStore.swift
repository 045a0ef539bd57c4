import Foundation
import HTTPTypes
import Logging
import PostgresNIO
import ServiceCore

/// Writes the configured plans into `plans`, which subscriptions reference and readers join for
/// quotas. A plan dropped from the configuration stays (subscriptions may still name it) but is
/// no longer public.
struct PlanCatalogStore: Sendable {
    let database: Database

    func save(_ catalog: PlanCatalog, logger: Logger) async throws {
        let ids = catalog.plans.map(\.id)
        try await database.transaction(logger: logger) { connection in
            for (position, plan) in catalog.plans.enumerated() {
                try await connection.query(
                    """
                    INSERT INTO plans (id, title, description, price, currency, monthly_message_quota, position, is_public)
                    VALUES (\(plan.id), \(plan.title), \(plan.description), \(Int(plan.price.minorUnits)), \(plan.price.currency),
                            \(plan.monthlyMessageQuota), \(position), \(plan.isPublic))
                    ON CONFLICT (id) DO UPDATE SET title = excluded.title, description = excluded.description, price = excluded.price,
                        currency = excluded.currency, monthly_message_quota = excluded.monthly_message_quota, position = excluded.position,
                        is_public = excluded.is_public
                    """,
                    logger: logger
                )
            }
            try await connection.query("UPDATE plans SET is_public = false WHERE NOT (id = ANY(\(ids)))", logger: logger)
        }
    }
}
