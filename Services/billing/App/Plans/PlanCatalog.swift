import Foundation
import HTTPTypes
import Logging
import PostgresNIO
import ServiceCore

/// A plan billing sells (or the trial it gives), from configuration.
struct PlanDefinition: Sendable, Equatable, Codable {
    var id: String
    var title: String
    var description: String
    var price: Money
    var monthlyMessageQuota: Int
    /// Listed by `GET /api/payments/plans` and payable; the trial is not.
    var isPublic: Bool
}

/// The plans, as configured (`BILLING_PLANS`, a JSON array) or seed 000's defaults. They are
/// written to the `plans` table at start, so subscriptions (and the entitlement reader) join the
/// same prices and quotas the API shows.
struct PlanCatalog: Sendable, Equatable {
    let plans: [PlanDefinition]

    static let defaults = PlanCatalog(plans: [
        PlanDefinition(
            id: "trial", title: "Trial", description: "Free trial with every feature, for a limited time",
            price: Money(minorUnits: 0, currency: "CLP"), monthlyMessageQuota: 1_000, isPublic: false
        ),
        PlanDefinition(
            id: "starter", title: "Starter", description: "For small businesses starting with an AI assistant",
            price: Money(minorUnits: 19_990, currency: "CLP"), monthlyMessageQuota: 10_000, isPublic: true
        ),
        PlanDefinition(
            id: "pro", title: "Pro", description: "For growing teams with more conversations",
            price: Money(minorUnits: 49_990, currency: "CLP"), monthlyMessageQuota: 50_000, isPublic: true
        ),
        PlanDefinition(
            id: "enterprise", title: "Enterprise", description: "For high-volume businesses",
            price: Money(minorUnits: 149_990, currency: "CLP"), monthlyMessageQuota: 1_000_000, isPublic: true
        ),
    ])

    init(plans: [PlanDefinition]) {
        self.plans = plans
    }

    /// Reads `BILLING_PLANS` (`[{"id", "title", "description", "price", "currency", "monthly_message_quota", "is_public"}]`,
    /// price in integer minor units); refuses a catalogue without the `trial` plan, a duplicated id,
    /// a non-positive price on a public plan, or public plans in more than one currency.
    init(json: String) throws {
        struct Entry: Decodable {
            var id: String
            var title: String
            var description: String
            var price: Int64
            var currency: String
            var monthlyMessageQuota: Int
            var isPublic: Bool
        }
        let entries: [Entry]
        do {
            entries = try JSONCoding.decoder.decode([Entry].self, from: Data(json.utf8))
        } catch {
            throw ConfigurationError(variable: "BILLING_PLANS", problem: "must be a JSON array of plans with integer prices: \(error)")
        }
        let plans = entries.map {
            PlanDefinition(
                id: $0.id, title: $0.title, description: $0.description, price: Money(minorUnits: $0.price, currency: $0.currency.uppercased()),
                monthlyMessageQuota: $0.monthlyMessageQuota, isPublic: $0.isPublic
            )
        }
        guard plans.contains(where: { $0.id == "trial" && !$0.isPublic }) else {
            throw ConfigurationError(variable: "BILLING_PLANS", problem: "must contain a non-public plan with id \"trial\"")
        }
        guard Set(plans.map(\.id)).count == plans.count, plans.allSatisfy({ !$0.id.isEmpty && $0.monthlyMessageQuota >= 0 }) else {
            throw ConfigurationError(variable: "BILLING_PLANS", problem: "plan ids must be unique and non-empty, quotas not negative")
        }
        guard plans.allSatisfy({ !$0.isPublic || $0.price.minorUnits > 0 }), plans.allSatisfy({ $0.price.minorUnits >= 0 }) else {
            throw ConfigurationError(variable: "BILLING_PLANS", problem: "public plans must cost more than zero, and no plan less than zero")
        }
        guard Set(plans.filter(\.isPublic).map(\.price.currency)).count <= 1 else {
            throw ConfigurationError(variable: "BILLING_PLANS", problem: "public plans must share one currency")
        }
        self.plans = plans
    }

    var publicPlans: [PlanDefinition] { plans.filter(\.isPublic) }

    /// The currency new payments are charged in.
    var currency: String { publicPlans.first?.price.currency ?? "CLP" }

    func plan(_ id: String) -> PlanDefinition? { plans.first { $0.id == id } }

    /// A plan a tenant can pay for.
    func payable(_ id: String) -> PlanDefinition? { plan(id).flatMap { $0.isPublic ? $0 : nil } }
}
