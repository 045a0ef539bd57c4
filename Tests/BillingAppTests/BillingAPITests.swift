import Foundation
import HTTPTypes
import InternalAPI
import NIOHTTP1
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

@testable import BillingApp

/// billing over real HTTP, with the real auth service issuing the tokens it verifies.
@Suite("billing")
struct BillingAPITests {
    struct Plans: Decodable {
        struct Plan: Decodable { var id: String; var price: Int; var currency: String; var monthlyMessageQuota: Int }
        var plans: [Plan]
    }

    struct SubscriptionBody: Decodable {
        var plan: String
        var status: String
        var trialEndsAt: Date?
        var isTrialExpired: Bool
        var daysRemaining: Int?
    }

    @Test func plansArePublicWithSeedPrices() async throws {
        try await TestStack.with(.auth, .billing) { stack in
            let response = try await TestHTTP.send(.GET, stack.url(.billing) + "/api/payments/plans")
            #expect(response.status == 200)
            let plans = try response.json(Plans.self).plans
            #expect(plans.map(\.id) == ["starter", "pro", "enterprise"])
            #expect(plans.map(\.price) == [19_990, 49_990, 149_990])
            #expect(plans.map(\.monthlyMessageQuota) == [10_000, 50_000, 1_000_000])
            #expect(plans.allSatisfy { $0.currency == "CLP" })
        }
    }

    @Test func trialIsStartedOnceAndShownToTheTenant() async throws {
        try await TestStack.with(.auth, .billing) { stack in
            let tenantID = UUID()
            let owner = try await Fixtures.createOwner(authURL: stack.url(.auth), tenantID: tenantID).json(CreatedOwner.self)
            let before = try await TestHTTP.send(.GET, stack.url(.billing) + "/api/payments/subscription", headers: Fixtures.bearer(owner.accessToken))
            #expect(before.status == 404)
            #expect(try before.error().code == "SUBSCRIPTION_NOT_FOUND")

            let first = try await stack.callInternal(.post, .billing, "/internal/subscriptions", as: .tenancy, json: StartTrialRequest(tenantId: tenantID))
            #expect(first.status == 201)
            let again = try await stack.callInternal(.post, .billing, "/internal/subscriptions", as: .tenancy, json: StartTrialRequest(tenantId: tenantID))
            #expect(again.status == 200)
            #expect(try first.json(SubscriptionSummary.self).trialEndsAt == again.json(SubscriptionSummary.self).trialEndsAt)
            let rows = try await TestPostgres.count(
                stack.databases[.billing]!, "SELECT count(*)::int FROM subscriptions WHERE tenant_id = \(tenantID) AND status = 'trialing'"
            )
            #expect(rows == 1)

            let shown = try await TestHTTP.send(.GET, stack.url(.billing) + "/api/payments/subscription", headers: Fixtures.bearer(owner.accessToken))
            #expect(shown.status == 200)
            let body = try shown.json(SubscriptionBody.self)
            #expect(body.plan == "trial")
            #expect(body.status == "trialing")
            #expect(body.isTrialExpired == false)
            #expect(body.daysRemaining == 14)
            let days = (body.trialEndsAt ?? .distantPast).timeIntervalSinceNow / 86_400
            #expect(days > 13.9 && days <= 14.0)
        }
    }

    @Test func subscriptionNeedsAValidToken() async throws {
        try await TestStack.with(.auth, .billing) { stack in
            let none = try await TestHTTP.send(.GET, stack.url(.billing) + "/api/payments/subscription")
            #expect(none.status == 401)
            let stranger = try await TokenForge.stranger().sign()
            let forged = try await TestHTTP.send(.GET, stack.url(.billing) + "/api/payments/subscription", headers: Fixtures.bearer(stranger))
            #expect(forged.status == 401)
            #expect(try forged.error().code == "INVALID_TOKEN")
        }
    }

    @Test func internalRoutesRefuseBadInput() async throws {
        try await TestStack.with(.billing) { stack in
            let url = stack.url(.billing) + "/internal/subscriptions"
            #expect(try await TestHTTP.send(.POST, url, json: StartTrialRequest(tenantId: UUID())).status == 401)
            let malformed = try await TestStack.callInternal(.post, url, callee: .billing, as: .tenancy, raw: "{")
            #expect(malformed.status == 400)
            let missing = try await TestStack.callInternal(.post, url, callee: .billing, as: .tenancy, raw: "{}")
            #expect(missing.status == 422)
            #expect(try missing.error().fields?["tenant_id"] == ["is required"])
            let badID = try await TestStack.callInternal(.get, url + "/not-a-uuid", callee: .billing, as: .tenancy)
            #expect(badID.status == 400)
            #expect(try await TestPostgres.count(stack.databases[.billing]!, "SELECT count(*)::int FROM subscriptions") == 0)
        }
    }

    @Test func deletingUndoesATrial() async throws {
        try await TestStack.with(.billing) { (stack: TestStack) async throws in
            let tenantID = UUID()
            let url = stack.url(.billing) + "/internal/subscriptions"
            #expect(try await TestStack.callInternal(.post, url, callee: .billing, as: .tenancy, json: StartTrialRequest(tenantId: tenantID)).status == 201)
            let path = url + "/" + tenantID.uuidString.lowercased()
            // chat reads subscriptions too; only tenancy's registration starts and removes them.
            #expect(try await TestStack.callInternal(.get, path, callee: .billing, as: .chat).status == 200)
            #expect(try await TestStack.callInternal(.delete, path, callee: .billing, as: .chat).status == 401)
            #expect(try await TestStack.callInternal(.delete, path, callee: .billing, as: .tenancy).status == 204)
            #expect(try await TestStack.callInternal(.get, path, callee: .billing, as: .tenancy).status == 404)
            #expect(try await TestPostgres.count(stack.databases[.billing]!, "SELECT count(*)::int FROM subscriptions") == 0)
        }
    }

    @Test func expiredTrialIsReported() {
        let now = Date()
        let subscription = Subscription(
            id: UUID(), tenantID: UUID(), plan: "trial", status: "trialing", trialEndsAt: now.addingTimeInterval(-60),
            currentPeriodStart: nil, currentPeriodEnd: nil, monthlyMessageQuota: 1000, createdAt: now
        )
        let described = PaymentsController.describe(subscription, now: now)
        #expect(described.isTrialExpired)
        #expect(described.daysRemaining == 0)
    }
}
