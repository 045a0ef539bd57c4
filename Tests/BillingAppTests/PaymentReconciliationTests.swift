import AsyncHTTPClient
import Foundation
import HTTPTypes
import Logging
import PostgresNIO
import ServiceCore
import Synchronization
import TestSupport
import Testing

@testable import BillingApp

/// Payments whose provider call ended without the provider's id (it timed out, or never arrived):
/// nothing is recorded as paid, and the scheduler's reconciliation finds them at the provider later,
/// by billing's reference and idempotency key. Also what `GET /api/payments/subscription` shows of
/// a cancellation and a scheduled downgrade.
@Suite("Payment reconciliation and the subscription's view")
struct PaymentReconciliationTests {
    static func payment(_ tenant: UUID, _ h: BillingRouterHarness) async throws -> (status: String, providerID: String?) {
        let rows = try await TestPostgres.withClient(h.database) { client in
            var rows: [(String, String?)] = []
            for try await row in try await client.query("SELECT status, provider_payment_id FROM payments WHERE tenant_id = \(tenant)")
                .decode((String, String?).self)
            {
                rows.append(row)
            }
            return rows
        }
        #expect(rows.count == 1)
        let row = try #require(rows.first)
        return (row.0, row.1)
    }

    @Test func aSandboxChargeThatTimedOutIsFoundAndApprovedByTheScheduler() async throws {
        try await BillingRouterHarness.with { h in
            let tenant = try await h.trial()
            let answer = try await h.pay(tenant, token: SandboxPaymentProvider.Token.timeout)
            #expect(try answer.status == 504 && answer.error().code == "PAYMENT_PROVIDER_TIMEOUT")
            // Charged at the sandbox, unknown to billing: pending, not paid.
            #expect(try await Self.payment(tenant, h) == ("pending", nil))
            #expect(try await h.status(of: tenant) == "trialing")

            #expect(try await h.runScheduler() == 1)
            let settled = try await Self.payment(tenant, h)
            #expect(settled.status == "approved" && settled.providerID?.isEmpty == false)
            #expect(try await h.status(of: tenant) == "active")
            #expect(
                try await h.value("SELECT event || ':' || cause FROM subscription_transitions WHERE tenant_id = \(tenant)", as: String.self)
                    == "payment_approved:scheduler"
            )
            // The next pass has nothing left.
            #expect(try await h.runScheduler() == 0)
        }
    }

    @Test func aChargeTheProviderNeverReceivedIsCancelledAfterAnHour() async throws {
        try await BillingRouterHarness.with { h in
            let tenant = try await h.trial()
            #expect(try await h.pay(tenant, token: SandboxPaymentProvider.Token.unavailable).status == 502)
            #expect(try await Self.payment(tenant, h) == ("pending", nil))
            // Not found yet, but young: kept pending.
            #expect(try await h.runScheduler() == 0)
            #expect(try await Self.payment(tenant, h) == ("pending", nil))
            h.clock.advance(seconds: SubscriptionScheduler.unfoundAfter + 1)
            #expect(try await h.runScheduler() == 1)
            #expect(try await Self.payment(tenant, h) == ("cancelled", nil))
            #expect(try await h.value("SELECT status_detail FROM payments WHERE tenant_id = \(tenant)", as: String.self) == "not_received_by_provider")
            #expect(try await h.status(of: tenant) == "trialing")
            // Paying again works: nothing is left in flight.
            #expect(try await h.pay(tenant).status == 200)
            #expect(try await h.status(of: tenant) == "active")
        }
    }

    /// MercadoPago answers the charge only after billing's deadline, then finds it by `external_reference`.
    final class SlowMercadoPago: Sendable {
        let reference = Mutex<String?>(nil)

        func answer(_ request: ProviderTestServer.Received) -> ProviderTestServer.Reply {
            switch (request.method, request.path) {
            case ("POST", "/v1/payments"):
                let sent = (try? request.json()["external_reference"] as? String) ?? nil
                reference.withLock { $0 = sent }
                return .late(.seconds(3), 201, Self.payment(sent ?? ""))
            case ("GET", "/v1/payments/search"):
                guard let known = reference.withLock({ $0 }) else { return .json(200, #"{"paging": {"total": 0, "limit": 10, "offset": 0}, "results": []}"#) }
                return .json(200, #"{"paging": {"total": 1, "limit": 10, "offset": 0}, "results": [\#(Self.payment(known))]}"#)
            default:
                return .json(404, #"{"message": "not found", "error": "not_found", "status": 404, "cause": []}"#)
            }
        }

        static func payment(_ reference: String) -> String {
            """
            {"id": 1319531342, "status": "approved", "status_detail": "accredited", "transaction_amount": 49990, "transaction_amount_refunded": 0,
             "currency_id": "CLP", "payment_method_id": "visa", "payment_type_id": "credit_card", "external_reference": "\(reference)",
             "date_created": "2026-11-29T17:00:00.000-04:00", "date_approved": "2026-11-29T17:00:02.000-04:00", "installments": 1}
            """
        }
    }

    @Test func aMercadoPagoChargeThatTimedOutIsFoundByItsExternalReference() async throws {
        let mercadoPago = SlowMercadoPago()
        try await ProviderTestServer.with({ mercadoPago.answer($0) }) { server, http in
            let overrides = [
                "PAYMENT_PROVIDER": "mercadopago", "MERCADOPAGO_ACCESS_TOKEN": "TEST-4431-reconcile", "MERCADOPAGO_API_URL": server.url,
                "MERCADOPAGO_TIMEOUT_SECONDS": "1",
            ]
            try await BillingRouterHarness.with(overrides) { h in
                let tenant = try await h.trial()
                let answer = try await h.pay(tenant)
                #expect(try answer.status == 504 && answer.error().code == "PAYMENT_PROVIDER_TIMEOUT")
                #expect(try await Self.payment(tenant, h) == ("pending", nil))
                #expect(try await h.status(of: tenant) == "trialing")
                let sent = try #require(server.received.first { $0.path == "/v1/payments" })
                #expect(sent.header("X-Idempotency-Key")?.hasPrefix("billing-payment-") == true)

                let changes = try await TestPostgres.withDatabase(h.database) { database in
                    let ledger = SubscriptionLedger(outbox: BillingRouterHarness.outbox)
                    let client = MercadoPagoClient(
                        config: MercadoPagoConfig(accessToken: "TEST-4431-reconcile", apiURL: server.url, timeout: .seconds(5)), http: http
                    )
                    return try await SubscriptionScheduler(
                        database: database, ledger: ledger, applier: ProviderPaymentApplier(ledger: ledger), provider: client, clock: h.clock,
                        graceDays: 7, interval: .seconds(3600), logger: Logger(label: "test-scheduler")
                    ).runPass()
                }
                #expect(changes == 1)
                let search = try #require(server.received.last)
                #expect(search.method == "GET" && search.path == "/v1/payments/search")
                #expect(search.header("Authorization") == "Bearer TEST-4431-reconcile")
                let reference = try #require(mercadoPago.reference.withLock { $0 })
                #expect(search.query?.contains("external_reference=\(ProviderHTTP.escape(reference))") == true)
                #expect(try await Self.payment(tenant, h) == ("approved", "1319531342"))
                #expect(try await h.status(of: tenant) == "active")
            }
        }
    }

    @Test func refundsAreOnTheSubscriptionsRecordAndLeaveItsPeriod() async throws {
        try await BillingRouterHarness.with { h in
            let tenant = try await h.trial()
            let paymentID = try #require(try await h.pay(tenant, plan: "starter").object()["payment_id"] as? String)
            let owner = try await h.token(tenant)
            let end = try await h.value("SELECT current_period_end FROM subscriptions WHERE tenant_id = \(tenant)", as: Date.self)
            let partial = try await h.send(.post, "/api/payments/refund", token: owner, raw: #"{"payment_id":"\#(paymentID)","amount":990}"#)
            let rest = try await h.send(.post, "/api/payments/refund", token: owner, json: ["payment_id": paymentID])
            #expect(partial.status == 200 && rest.status == 200)
            let refunds = [try partial.object()["refund_id"] as? String, try rest.object()["refund_id"] as? String]
            // As in Stripe Billing, a refund leaves the status and the period; each is recorded against the subscription.
            #expect(try await h.status(of: tenant) == "active")
            #expect(try await h.value("SELECT current_period_end FROM subscriptions WHERE tenant_id = \(tenant)", as: Date.self) == end)
            #expect(
                try await h.value(
                    "SELECT string_agg(event || ':' || cause || ':' || coalesce(cause_ref, ''), ',' ORDER BY recorded_at) FROM subscription_transitions WHERE tenant_id = \(tenant) AND event = 'payment_refunded'",
                    as: String.self
                ) == refunds.map { "payment_refunded:user:\($0 ?? "")" }.joined(separator: ",")
            )
        }
    }

    @Test func theSubscriptionShowsACancellationAndAScheduledDowngrade() async throws {
        try await BillingRouterHarness.with { h in
            let tenant = try await h.trial()
            let token = try await h.token(tenant)
            var shown = try await h.send(.get, "/api/payments/subscription", token: token).object()
            #expect(shown["cancel_at_period_end"] as? Bool == false && shown["pending_plan"] == nil)
            #expect(try await h.pay(tenant, plan: "pro").status == 200)
            #expect(try await h.send(.post, "/api/payments/change-plan", token: token, json: ["plan": "starter"]).status == 200)
            shown = try await h.send(.get, "/api/payments/subscription", token: token).object()
            #expect(shown["plan"] as? String == "pro" && shown["pending_plan"] as? String == "starter" && shown["status"] as? String == "active")
            #expect(try await h.send(.post, "/api/payments/cancel", token: token).status == 200)
            shown = try await h.send(.get, "/api/payments/subscription", token: token).object()
            // Cancelling drops the downgrade; the paid period runs on.
            #expect(shown["status"] as? String == "active" && shown["cancel_at_period_end"] as? Bool == true && shown["pending_plan"] == nil)
        }
    }
}
