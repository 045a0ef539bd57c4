import Foundation
import HTTPTypes
import InternalAPI
import Logging
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

@testable import BillingApp

/// The subscription lifecycle over time (the scheduler on a moved clock), cancellation, plan
/// changes, refunds and manual payments, through billing's router against real PostgreSQL.
@Suite("billing lifecycle (router)")
struct BillingLifecycleRouterTests {
    func events(_ h: BillingRouterHarness, _ tenant: UUID) async throws -> [String] {
        try await TestPostgres.withClient(h.database) { client in
            try await client.query(
                "SELECT event || ':' || cause FROM subscription_transitions WHERE tenant_id = \(tenant) ORDER BY occurred_at, recorded_at"
            ).collect().map { try $0.decode(String.self) }
        }
    }

    @Test func trialWarnsThreeDaysAheadThenExpires() async throws {
        try await BillingRouterHarness.with { h in
            let tenant = try await h.trial(endingInDays: 5)
            #expect(try await h.runScheduler() == 0)
            h.clock.advance(days: 2.5)
            #expect(try await h.runScheduler() == 1)
            #expect(try await h.value("SELECT trial_ending_notified_at IS NOT NULL FROM subscriptions WHERE tenant_id = \(tenant)", as: Bool.self) == true)
            #expect(try await h.runScheduler() == 0)
            h.clock.advance(days: 3)
            #expect(try await h.runScheduler() == 1)
            #expect(try await events(h, tenant) == ["trial_expired:scheduler"])
            let shown = try await h.send(.get, "/api/payments/subscription", token: try await h.token(tenant, .user)).object()
            #expect(shown["status"] as? String == "trialing")
            #expect(shown["is_trial_expired"] as? Bool == true)
            #expect(try await h.runScheduler() == 0)
            // Paying after the trial activates.
            #expect(try await h.pay(tenant).status == 200)
            #expect(try await h.status(of: tenant) == "active")
        }
    }

    @Test func anUnpaidPeriodGoesPastDueThenCanceledAfterGraceAndPayingReactivates() async throws {
        try await BillingRouterHarness.with { h in
            let tenant = try await h.trial()
            #expect(try await h.pay(tenant, plan: "starter").status == 200)
            h.clock.advance(days: 20)
            #expect(try await h.runScheduler() == 0)
            h.clock.advance(days: 12)
            #expect(try await h.runScheduler() == 1)
            #expect(try await h.status(of: tenant) == "past_due")
            // Grace runs from the period's end (a month after paying: at most day 31), not from when the pass noticed.
            h.clock.advance(days: 2)
            #expect(try await h.runScheduler() == 0)
            h.clock.advance(days: 5)
            #expect(try await h.runScheduler() == 1)
            #expect(try await h.status(of: tenant) == "canceled")
            #expect(try await h.pay(tenant, plan: "starter").status == 200)
            #expect(try await h.status(of: tenant) == "active")
            #expect(
                try await events(h, tenant) == [
                    "payment_approved:payment", "period_ended_unpaid:scheduler", "grace_elapsed:scheduler", "payment_approved:payment",
                ]
            )
        }
    }

    @Test func graceDaysComeFromConfiguration() async throws {
        try await BillingRouterHarness.with { h in
            let tenant = try await h.trial()
            #expect(try await h.pay(tenant).status == 200)
            h.clock.advance(days: 32)
            _ = try await h.runScheduler(graceDays: 1)
            h.clock.advance(days: 1.1)
            _ = try await h.runScheduler(graceDays: 1)
            #expect(try await h.status(of: tenant) == "canceled")
        }
    }

    @Test func theSchedulerSettlesAPaymentWhoseWebhookWasLost() async throws {
        try await BillingRouterHarness.with { h in
            let tenant = try await h.trial()
            #expect(try await h.pay(tenant, token: SandboxPaymentProvider.Token.pending).status == 200)
            #expect(try await h.runScheduler() == 0)
            #expect(try await h.status(of: tenant) == "incomplete")
            h.clock.advance(seconds: 10)
            #expect(try await h.runScheduler() == 1)
            #expect(try await h.status(of: tenant) == "active")
            #expect(try await h.value("SELECT status FROM payments", as: String.self) == "approved")
            #expect(try await events(h, tenant) == ["payment_not_approved:payment", "payment_approved:scheduler"])
            #expect(try await h.runScheduler() == 0)
        }
    }

    @Test func onlyOneReplicaRunsAPass() async throws {
        try await BillingRouterHarness.with { h in
            _ = try await h.trial(endingInDays: 1)
            try await TestPostgres.withClient(h.database) { client in
                try await client.withConnection { held in
                    _ = try await held.query("SELECT pg_advisory_lock(\(SubscriptionScheduler.lockKey))", logger: Logger(label: "test")).collect()
                    #expect(try await h.runScheduler() == nil)
                    _ = try await held.query("SELECT pg_advisory_unlock(\(SubscriptionScheduler.lockKey))", logger: Logger(label: "test")).collect()
                }
            }
            #expect(try await h.runScheduler() == 1)
        }
    }

    @Test func cancelKeepsAccessUntilThePeriodEndsThenCancels() async throws {
        try await BillingRouterHarness.with { h in
            let tenant = try await h.trial()
            #expect(try await h.pay(tenant).status == 200)
            let periodEnd = try #require(try await h.value("SELECT current_period_end FROM subscriptions WHERE tenant_id = \(tenant)", as: Date.self))
            let before = try await h.snapshot()
            #expect(try await h.send(.post, "/api/payments/cancel", token: try await h.token(tenant, .user)).status == 403)
            #expect(try await h.snapshot() == before)
            let canceled = try await h.send(.post, "/api/payments/cancel", token: try await h.token(tenant))
            #expect(canceled.status == 200)
            let body = try canceled.object()
            #expect(body["status"] as? String == "canceled")
            #expect((body["message"] as? String)?.isEmpty == false)
            #expect(body["current_period_end"] as? String != nil)
            #expect(try await h.status(of: tenant) == "active")
            // Cancelling again changes nothing more.
            #expect(try await h.send(.post, "/api/payments/cancel", token: try await h.token(tenant)).status == 200)
            #expect(try await events(h, tenant) == ["payment_approved:payment", "cancel_requested:user"])
            h.clock.advance(days: periodEnd.timeIntervalSince(h.clock.now()) / 86_400 + 0.01)
            #expect(try await h.runScheduler() == 1)
            #expect(try await h.status(of: tenant) == "canceled")
            let again = try await h.send(.post, "/api/payments/cancel", token: try await h.token(tenant))
            #expect(again.status == 409)
            #expect(try await h.pay(tenant).status == 200)
            #expect(try await h.status(of: tenant) == "active")
        }
    }

    @Test func downgradeWaitsForThePeriodEndAndUpgradeNeedsPayment() async throws {
        try await BillingRouterHarness.with { h in
            let tenant = try await h.trial()
            let owner = try await h.token(tenant)
            #expect(try await h.send(.post, "/api/payments/change-plan", token: owner, json: ["plan": "starter"]).status == 409)
            #expect(try await h.pay(tenant, plan: "pro").status == 200)
            let before = try await h.snapshot()
            let upgrade = try await h.send(.post, "/api/payments/change-plan", token: owner, json: ["plan": "enterprise"])
            #expect(upgrade.status == 402)
            #expect(try upgrade.error().code == "UPGRADE_REQUIRES_PAYMENT")
            #expect(try await h.send(.post, "/api/payments/change-plan", token: owner, json: ["plan": "gold"]).status == 422)
            #expect(try await h.send(.post, "/api/payments/change-plan", token: owner, json: ["plan": "pro"]).status == 409)
            #expect(try await h.snapshot() == before)
            let downgrade = try await h.send(.post, "/api/payments/change-plan", token: owner, json: ["plan": "starter"])
            #expect(downgrade.status == 200)
            #expect(try downgrade.object()["pending_plan"] as? String == "starter")
            #expect(try await h.value("SELECT plan FROM subscriptions WHERE tenant_id = \(tenant)", as: String.self) == "pro")
            h.clock.advance(days: 32)
            _ = try await h.runScheduler()
            #expect(try await h.value("SELECT plan FROM subscriptions WHERE tenant_id = \(tenant)", as: String.self) == "starter")
            #expect(try await h.status(of: tenant) == "past_due")
            // Paying for the upgrade switches at once, with a new period.
            #expect(try await h.pay(tenant, plan: "enterprise").status == 200)
            #expect(try await h.value("SELECT plan FROM subscriptions WHERE tenant_id = \(tenant)", as: String.self) == "enterprise")
            #expect(try await h.status(of: tenant) == "active")
        }
    }

    @Test func refundsArePartialOrFullAndNeverMoreThanPaid() async throws {
        try await BillingRouterHarness.with { h in
            let tenant = try await h.trial()
            let paid = try await h.pay(tenant, plan: "starter").object()
            let paymentID = try #require(paid["payment_id"] as? String)
            let owner = try await h.token(tenant)
            let before = try await h.snapshot()
            let badInputs: [(String, Int)] = [
                (#"{"payment_id":"\#(paymentID)","amount":0}"#, 422),
                (#"{"payment_id":"\#(paymentID)","amount":-5}"#, 422),
                (#"{"payment_id":"\#(paymentID)","amount":19991}"#, 422),
                (#"{"payment_id":"\#(UUID().uuidString)"}"#, 404),
                (#"{"payment_id":"not-a-payment"}"#, 404),
                (#"{"amount":5}"#, 422),
            ]
            for (body, status) in badInputs {
                #expect(try await h.send(.post, "/api/payments/refund", token: owner, raw: body).status == status, "\(body)")
            }
            #expect(try await h.send(.post, "/api/payments/refund", token: owner, raw: #"{"payment_id":"\#(paymentID)","amount":10.5}"#).status == 422)
            #expect(try await h.send(.post, "/api/payments/refund", token: try await h.token(tenant, .user), json: ["payment_id": paymentID]).status == 403)
            #expect(try await h.send(.post, "/api/payments/refund", token: try await h.token(UUID()), json: ["payment_id": paymentID]).status == 404)
            #expect(try await h.snapshot() == before)

            let partial = try await h.send(.post, "/api/payments/refund", token: owner, raw: #"{"payment_id":"\#(paymentID)","amount":990}"#)
            #expect(partial.status == 200)
            #expect(try partial.object()["amount"] as? Int == 990)
            let rest = try await h.send(.post, "/api/payments/refund", token: owner, json: ["payment_id": paymentID])
            #expect(try rest.object()["amount"] as? Int == 19_000)
            #expect(try await h.value("SELECT status FROM payments", as: String.self) == "refunded")
            #expect(try await h.count("SELECT count(*)::int FROM refunds WHERE status = 'approved'") == 2)
            #expect(try await h.send(.post, "/api/payments/refund", token: owner, json: ["payment_id": paymentID]).status == 409)
        }
    }

    @Test func markPaidIsForSuperAdminsWithAReasonAndAudited() async throws {
        try await BillingRouterHarness.with { h in
            let tenant = try await h.trial()
            let admin = try await h.token(UUID(), .superAdmin)
            let before = try await h.snapshot()
            #expect(try await h.send(.post, "/api/payments/mark-paid", token: try await h.token(tenant), json: ["tenant_id": tenant.uuidString, "reason": "x"]).status == 403)
            let noReason = try await h.send(.post, "/api/payments/mark-paid", token: admin, json: ["tenant_id": tenant.uuidString, "reason": "  "])
            #expect(noReason.status == 422)
            #expect(try noReason.error().fields?["reason"] != nil)
            #expect(try await h.send(.post, "/api/payments/mark-paid", token: admin, json: ["tenant_id": tenant.uuidString, "reason": "x", "plan": "gold"]).status == 422)
            #expect(try await h.send(.post, "/api/payments/mark-paid", token: admin, json: ["tenant_id": UUID().uuidString, "reason": "x"]).status == 404)
            #expect(try await h.snapshot() == before)
            let marked = try await h.send(.post, "/api/payments/mark-paid", token: admin, json: ["tenant_id": tenant.uuidString, "reason": "Paid by bank transfer"])
            #expect(marked.status == 200)
            #expect(try marked.object()["reason"] as? String == "Paid by bank transfer")
            #expect(try await h.status(of: tenant) == "active")
            #expect(try await h.count("SELECT count(*)::int FROM manual_payment_audit WHERE reason = 'Paid by bank transfer'") == 1)
            #expect(try await events(h, tenant) == ["payment_approved:admin"])
        }
    }
}
