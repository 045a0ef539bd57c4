import Foundation
import InternalAPI
import NIOHTTP1
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

/// Cancellation as a client lives it, through the gateway with billing's scheduler running: a paid
/// subscription cancelled mid-period keeps chat until its period ends, then billing's own pass
/// moves it to `canceled` and chat refuses with 402. The period's end is moved into the past in
/// billing's database (the live processes keep the real clock); everything else is the services'.
@Suite("cancel through the gateway")
struct CancelThroughGatewayTests {
    struct Session: Decodable { var sessionId: String }

    @Test func aCancelledSubscriptionKeepsChatUntilItsPeriodEndsThenIsCanceled() async throws {
        let overrides = [
            "ENTITLEMENT_CACHE_SECONDS": "0", "CHAT_STREAM_TOKEN_DELAY_MS": "0", "RATE_LIMIT_SESSION_PER_MINUTE": "1000",
            "RATE_LIMIT_AUTH_PER_MINUTE": "1000", "BILLING_SCHEDULER_SECONDS": "1",
        ]
        try await TestStack.with(.auth, .billing, .tenancy, .chat, .gateway, overrides: overrides) { stack in
            let gateway = stack.url(.gateway)
            let owner = try await Fixtures.register(at: gateway, accountName: "Cancelling Books")
            let auth = Fixtures.bearer(owner.accessToken)
            let tenantID = try #require(UUID(uuidString: owner.tenantId))
            let billing = stack.databases[.billing]!

            let paid = try await TestHTTP.send(
                .POST, gateway + "/api/payments/process-payment", headers: auth.merging(["Idempotency-Key": "cancel-e2e"]) { $1 },
                json: ["token": "tok_sandbox_approved", "payment_method_id": "visa", "plan": "starter", "email": owner.email]
            )
            #expect(paid.status == 200, "\(paid.text)")

            let cancel = try await TestHTTP.send(.POST, gateway + "/api/payments/cancel", headers: auth, json: [String: String]())
            #expect(cancel.status == 200, "\(cancel.text)")
            let afterCancel = try await TestHTTP.send(.GET, gateway + "/api/payments/subscription", headers: auth)
            let view = try afterCancel.json([String: JSONValue].self)
            #expect(view["status"] == .string("active"))
            #expect(view["cancel_at_period_end"] == .bool(true))

            // Access until the period ends: a widget visitor still gets answers.
            let session = try await TestHTTP.send(.POST, gateway + "/api/sessions/init", headers: ["X-Tenant-Slug": owner.tenantSlug], json: [String: String]())
            let sessionID = try session.json(Session.self).sessionId
            let ask: @Sendable () async throws -> TestResponse = {
                try await TestHTTP.send(
                    .POST, gateway + "/api/chat", headers: ["X-Session-ID": sessionID], json: ["messages": [["role": "user", "content": "Hello?"]]]
                )
            }
            let allowed = try await ask()
            #expect(allowed.status == 200, "\(allowed.text)")

            // The period ends: billing's scheduler (every second) cancels it, and chat refuses.
            _ = try await TestPostgres.withClient(billing) { client in
                try await client.query(
                    "UPDATE subscriptions SET current_period_end = now() - interval '1 second' WHERE tenant_id = \(tenantID)"
                )
            }
            let canceled = try await Polling.within(10) {
                let current = try await TestHTTP.send(.GET, gateway + "/api/payments/subscription", headers: auth)
                return try current.json([String: JSONValue].self)["status"] == .string("canceled")
            }
            #expect(canceled != nil)
            #expect(
                try await TestPostgres.count(
                    billing, "SELECT count(*)::int FROM subscription_transitions WHERE tenant_id = \(tenantID) AND to_status = 'canceled' AND cause = 'scheduler'"
                ) == 1
            )
            let messagesBefore = try await TestPostgres.count(stack.databases[.chat]!, "SELECT count(*)::int FROM messages")
            let refused = try await ask()
            #expect(refused.status == 402, "\(refused.text)")
            #expect(try await TestPostgres.count(stack.databases[.chat]!, "SELECT count(*)::int FROM messages") == messagesBefore)
        }
    }
}
