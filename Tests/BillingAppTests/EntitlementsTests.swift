import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import InternalAPI
import NIOCore
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

@testable import BillingApp

/// Entitlements and usage through billing's router (HummingbirdTesting's `.router`) against a real
/// PostgreSQL database; auth runs beside it only to publish the JWKS access tokens verify against.
@Suite("billing entitlements and usage")
struct EntitlementsTests {
    struct Harness: Sendable {
        let client: any TestClientProtocol
        let stack: TestStack
        let forge: TokenForge
        var database: DatabaseConfig { stack.databases[.billing]! }

        static func with(_ body: @escaping @Sendable (Harness) async throws -> Void) async throws {
            let stack = try await TestStack.make()
            do {
                try await stack.start(.auth)
                let forge = try await TokenForge.fromAuthDatabase(stack.databases[.auth]!)
                let app = try await buildBillingApplication(config: BillingConfig(settings: Settings.variables(stack.environment(for: .billing))))
                try await app.test(.router) { client in try await body(Harness(client: client, stack: stack, forge: forge)) }
                await stack.stopAll()
            } catch {
                await stack.stopAll()
                throw error
            }
        }

        /// An internal call made as `caller` makes it: a caller token for this very request.
        func internalCall(_ method: HTTPRequest.Method, _ path: String, as caller: ServiceName, json: (any Encodable)? = nil) async throws -> HummingbirdTesting.TestResponse {
            let body = try json.map { Array(try JSONCoding.encoder.encode($0)) }
            var headers = HTTPFields()
            for (name, value) in try await TestStack.callerHeaders(as: caller, to: .billing, method, path, body: body) {
                headers[HTTPField.Name(name)!] = value
            }
            if body != nil { headers[.contentType] = "application/json" }
            return try await client.execute(uri: path, method: method, headers: headers, body: body.map { ByteBuffer(bytes: $0) })
        }

        func entitlement(_ tenant: UUID, as caller: ServiceName = .chat) async throws -> HummingbirdTesting.TestResponse {
            try await internalCall(.get, "/internal/entitlements/\(tenant.uuidString.lowercased())", as: caller)
        }

        /// Delivers `chat.message_answered` as chat's relay would.
        func answered(_ tenant: UUID, at moment: Date = Date(), eventID: UUID = UUID(), from sender: ServiceName = .chat) async throws -> HummingbirdTesting.TestResponse {
            let event = try EventEnvelope(
                type: MessageAnswered.type, source: sender.rawValue,
                payload: MessageAnswered(tenantId: tenant, messageId: UUID(), conversationId: UUID(), answeredAt: moment), id: eventID
            )
            return try await internalCall(.post, "/internal/events", as: sender, json: event)
        }

        /// A tenant's trial, started as tenancy starts it, then shaped by `update` (SQL on its row).
        func subscription(_ tenant: UUID, _ update: PostgresQuery? = nil) async throws {
            let started = try await internalCall(.post, "/internal/subscriptions", as: .tenancy, json: StartTrialRequest(tenantId: tenant))
            #expect(started.status == .created)
            if let update {
                try await TestPostgres.withClient(database) { client in _ = try await client.query(update) }
            }
        }

        func counted(_ tenant: UUID) async throws -> Int {
            try await TestPostgres.count(database, "SELECT coalesce(sum(messages), 0)::int FROM usage_counters WHERE tenant_id = \(tenant)")
        }
    }

    @Test func aTrialAnswersItsQuotaUsageAndFeatures() async throws {
        try await Harness.with { harness in
            let tenant = UUID()
            try await harness.subscription(tenant)
            for _ in 0..<3 { #expect(try await harness.answered(tenant).status == .ok) }
            let answer = try await harness.entitlement(tenant)
            #expect(answer.status == .ok)
            let entitlement = try JSONCoding.decoder.decode(TenantEntitlement.self, from: Data(answer.body.readableBytesView))
            #expect(entitlement.tenantId == tenant && entitlement.plan == "trial" && entitlement.status == "trialing")
            #expect(entitlement.monthlyQuota == 1000 && entitlement.used == 3)
            #expect(entitlement.chatAllowed && entitlement.reason == nil && !entitlement.isTrialExpired)
            // A running trial tries every feature.
            #expect(entitlement.features == TenantEntitlement.Features(analytics: true, whiteLabel: true))
            // The trial's window: from its start to trial_ends_at.
            #expect(abs(entitlement.periodStart.timeIntervalSinceNow) < 60)
            #expect(abs(entitlement.periodEnd.timeIntervalSinceNow - 14 * 86_400) < 60)
            // tenancy asks too; auth and the gateway may not.
            #expect(try await harness.entitlement(tenant, as: .tenancy).status == .ok)
            #expect(try await harness.entitlement(tenant, as: .auth).status == .unauthorized)
            #expect(try await harness.entitlement(tenant, as: .gateway).status == .unauthorized)
            #expect(try await harness.entitlement(UUID()).status == .notFound)
        }
    }

    @Test func theQuotaReachedRefusesChat() async throws {
        try await Harness.with { harness in
            let tenant = UUID()
            let start = Date().addingTimeInterval(-86_400)
            try await harness.subscription(
                tenant,
                """
                UPDATE subscriptions SET plan = 'starter', status = 'active', current_period_start = \(start),
                    current_period_end = \(start.addingTimeInterval(30 * 86_400)) WHERE tenant_id = \(tenant)
                """
            )
            try await TestPostgres.withClient(harness.database) { client in
                _ = try await client.query(
                    """
                    INSERT INTO usage_counters (tenant_id, period_start, period_end, messages)
                    VALUES (\(tenant), \(start), \(start.addingTimeInterval(30 * 86_400)), 9999)
                    """
                )
            }
            var entitlement = try JSONCoding.decoder.decode(TenantEntitlement.self, from: Data(try await harness.entitlement(tenant).body.readableBytesView))
            #expect(entitlement.used == 9_999 && entitlement.monthlyQuota == 10_000 && entitlement.chatAllowed)
            #expect(try await harness.answered(tenant).status == .ok)
            entitlement = try JSONCoding.decoder.decode(TenantEntitlement.self, from: Data(try await harness.entitlement(tenant).body.readableBytesView))
            #expect(entitlement.used == 10_000)
            #expect(!entitlement.chatAllowed)
            #expect(entitlement.reason?.contains("quota of 10000 messages is used up") == true)
            // A message answered before this period (delivered late) does not count in it.
            #expect(try await harness.answered(tenant, at: start.addingTimeInterval(-40 * 86_400)).status == .ok)
            entitlement = try JSONCoding.decoder.decode(TenantEntitlement.self, from: Data(try await harness.entitlement(tenant).body.readableBytesView))
            #expect(entitlement.used == 10_000)
        }
    }

    @Test func anEventIsCountedOnceAndOnlyForItsTenant() async throws {
        try await Harness.with { harness in
            let (tenant, other) = (UUID(), UUID())
            try await harness.subscription(tenant)
            try await harness.subscription(other)
            let eventID = UUID()
            let first = try await harness.answered(tenant, eventID: eventID)
            #expect(first.status == .ok)
            #expect(String(buffer: first.body).contains("applied"))
            let again = try await harness.answered(tenant, eventID: eventID)
            #expect(again.status == .ok)
            #expect(String(buffer: again.body).contains("duplicate"))
            #expect(try await harness.counted(tenant) == 1)
            #expect(try await harness.counted(other) == 0)
            let otherView = try JSONCoding.decoder.decode(TenantEntitlement.self, from: Data(try await harness.entitlement(other).body.readableBytesView))
            #expect(otherView.used == 0)

            // The same event delivered by several relays at once still counts once.
            let racing = UUID()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<5 {
                    group.addTask {
                        let status = try await harness.answered(tenant, eventID: racing).status
                        #expect(status == .ok)
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await harness.counted(tenant) == 2)
            // Only chat reports answered messages: another service's key is refused at the door.
            #expect(try await harness.answered(tenant, from: .tenancy).status == .unauthorized)
            #expect(try await harness.counted(tenant) == 2)
            #expect(try await harness.count("SELECT count(*)::int FROM processed_events") == 2)
            #expect(try await harness.internalCall(.get, "/internal/entitlements/not-a-uuid", as: .chat).status == .badRequest)
        }
    }

    @Test func aMalformedEventChangesNothing() async throws {
        try await Harness.with { harness in
            let tenant = UUID()
            try await harness.subscription(tenant)
            struct Broken: Encodable { var tenantId = "not-a-uuid" }
            let event = try EventEnvelope(type: MessageAnswered.type, source: "chat", payload: Broken())
            let answer = try await harness.internalCall(.post, "/internal/events", as: .chat, json: event)
            #expect(answer.status.code >= 400 && answer.status.code < 500)
            #expect(try await harness.count("SELECT count(*)::int FROM processed_events") == 0)
            #expect(try await harness.count("SELECT count(*)::int FROM usage_counters") == 0)
        }
    }

    @Test func anExpiredTrialACanceledOrIncompleteSubscriptionRefusesChat() async throws {
        try await Harness.with { harness in
            let (expired, canceled, stillPaid, incomplete) = (UUID(), UUID(), UUID(), UUID())
            let past = Date().addingTimeInterval(-3600)
            try await harness.subscription(expired, "UPDATE subscriptions SET trial_ends_at = \(past), created_at = \(past.addingTimeInterval(-14 * 86_400)) WHERE tenant_id = \(expired)")
            try await harness.subscription(
                canceled,
                "UPDATE subscriptions SET plan = 'pro', status = 'canceled', current_period_start = \(past.addingTimeInterval(-30 * 86_400)), current_period_end = \(past) WHERE tenant_id = \(canceled)"
            )
            try await harness.subscription(
                stillPaid,
                "UPDATE subscriptions SET plan = 'enterprise', status = 'canceled', current_period_start = \(past), current_period_end = \(past.addingTimeInterval(20 * 86_400)) WHERE tenant_id = \(stillPaid)"
            )
            try await harness.subscription(incomplete, "UPDATE subscriptions SET plan = 'pro', status = 'incomplete' WHERE tenant_id = \(incomplete)")

            func view(_ tenant: UUID) async throws -> TenantEntitlement {
                try JSONCoding.decoder.decode(TenantEntitlement.self, from: Data(try await harness.entitlement(tenant).body.readableBytesView))
            }
            let trial = try await view(expired)
            #expect(trial.isTrialExpired && !trial.chatAllowed && trial.reason?.contains("free trial ended") == true)
            // An ended trial has no plan-gated feature either.
            #expect(trial.features == TenantEntitlement.Features(analytics: false, whiteLabel: false))
            let gone = try await view(canceled)
            #expect(!gone.chatAllowed && gone.reason?.contains("canceled") == true && gone.features.analytics)
            // Canceled is canceled even with a period end still ahead (Stripe ended it at once): access
            // to the period's end is an `active` subscription with cancel_at_period_end.
            let ended = try await view(stillPaid)
            #expect(!ended.chatAllowed && ended.reason?.contains("canceled") == true)
            #expect(ended.periodEnd.timeIntervalSince(past) > 19 * 86_400)
            let unpaid = try await view(incomplete)
            #expect(!unpaid.chatAllowed && unpaid.reason?.contains("first payment") == true)
        }
    }

    @Test func aTenantSeesItsOwnUsage() async throws {
        try await Harness.with { harness in
            let (tenant, other) = (UUID(), UUID())
            try await harness.subscription(tenant)
            try await harness.subscription(other)
            for _ in 0..<2 { _ = try await harness.answered(tenant) }
            _ = try await harness.answered(other)
            let token = try await harness.forge.sign(tenantID: tenant, role: .user)
            let answer = try await harness.client.execute(uri: "/api/payments/usage", method: .get, headers: [.authorization: "Bearer \(token)"])
            #expect(answer.status == .ok)
            #expect(answer.headers[.cacheControl] == "no-store")
            let body = try #require(try JSONSerialization.jsonObject(with: Data(answer.body.readableBytesView)) as? [String: Any])
            #expect(body["plan"] as? String == "trial")
            #expect(body["used"] as? Int == 2)
            #expect(body["remaining"] as? Int == 998)
            #expect(body["monthly_quota"] as? Int == 1000)
            #expect(body["chat_allowed"] as? Bool == true)
            #expect(body["features"] as? [String: Bool] == ["analytics": true, "white_label": true])
            #expect(body["period_start"] is String && body["period_end"] is String)
            #expect(body["reason"] == nil)

            let none = try await harness.client.execute(uri: "/api/payments/usage", method: .get)
            #expect(none.status == .unauthorized)
            let stranger = try await TokenForge.stranger().sign(tenantID: tenant)
            #expect(try await harness.client.execute(uri: "/api/payments/usage", method: .get, headers: [.authorization: "Bearer \(stranger)"]).status == .unauthorized)
            let nobody = try await harness.forge.sign(tenantID: UUID())
            let missing = try await harness.client.execute(uri: "/api/payments/usage", method: .get, headers: [.authorization: "Bearer \(nobody)"])
            #expect(missing.status == .notFound)
        }
    }

    @Test func usagePeriodsFollowTheSubscription() {
        let now = Date(timeIntervalSince1970: 1_795_986_000)  // 2026-11-29T21:00:00Z
        let created = now.addingTimeInterval(-86_400)
        let trial = UsagePeriod.Facts(status: "trialing", createdAt: created, trialEndsAt: now.addingTimeInterval(86_400), currentPeriodStart: nil, currentPeriodEnd: nil)
        #expect(UsagePeriod.holding(now, subscription: trial) == UsagePeriod(start: created, end: now.addingTimeInterval(86_400)))
        let start = now.addingTimeInterval(-10 * 86_400)
        let paid = UsagePeriod.Facts(status: "active", createdAt: created, trialEndsAt: nil, currentPeriodStart: start, currentPeriodEnd: start.addingTimeInterval(30 * 86_400))
        #expect(UsagePeriod.holding(now, subscription: paid) == UsagePeriod(start: start, end: start.addingTimeInterval(30 * 86_400)))
        // Outside any period: the UTC calendar month.
        let month = UsagePeriod.holding(now, subscription: nil)
        #expect(month.start == Date(timeIntervalSince1970: 1_793_491_200))  // 2026-11-01
        #expect(month.end == Date(timeIntervalSince1970: 1_796_083_200))  // 2026-12-01
        #expect(UsagePeriod.holding(start.addingTimeInterval(-1), subscription: paid) == UsagePeriod.calendarMonth(holding: start.addingTimeInterval(-1)))
    }
}

extension EntitlementsTests.Harness {
    func count(_ query: PostgresQuery) async throws -> Int { try await TestPostgres.count(database, query) }
}
