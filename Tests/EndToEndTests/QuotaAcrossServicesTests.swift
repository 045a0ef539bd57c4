import Foundation
import NIOHTTP1
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

/// chat asks billing before each user message and reports each answer back: the quota is the
/// plan's, counted by billing from chat's events, and enforced by chat — through the gateway.
@Suite("quota across chat and billing")
struct QuotaAcrossServicesTests {
    struct Session: Decodable { var sessionId: String }
    struct Answer: Decodable { var status: String; var content: String }
    struct Usage: Decodable {
        var plan: String
        var monthlyQuota: Int
        var used: Int
        var chatAllowed: Bool
        var reason: String?
    }

    /// The seed's plans, with a trial of two messages so the test reaches its end.
    static let plans = """
        [{"id":"trial","title":"Trial","description":"Free trial","price":0,"currency":"CLP","monthly_message_quota":2,"is_public":false},
         {"id":"starter","title":"Starter","description":"Small","price":19990,"currency":"CLP","monthly_message_quota":10000,"is_public":true},
         {"id":"pro","title":"Pro","description":"Growing","price":49990,"currency":"CLP","monthly_message_quota":50000,"is_public":true}]
        """

    @Test func answersCountInBillingAndTheQuotaStopsChatUntilThePlanIsPaid() async throws {
        let overrides = [
            "BILLING_PLANS": Self.plans, "ENTITLEMENT_CACHE_SECONDS": "0", "CHAT_STREAM_TOKEN_DELAY_MS": "0",
            "RATE_LIMIT_SESSION_PER_MINUTE": "1000", "RATE_LIMIT_TENANT_PER_MINUTE": "100000", "TENANT_DEFAULT_RATE_LIMIT_PER_MINUTE": "100000",
        ]
        try await TestStack.with(.auth, .billing, .tenancy, .chat, .gateway, overrides: overrides) { stack in
            let gateway = stack.url(.gateway)
            let owner = try await Fixtures.register(at: gateway, accountName: "Quota Books")
            let session = try await TestHTTP.send(.POST, gateway + "/api/sessions/init", headers: ["X-Tenant-Slug": owner.tenantSlug], json: [String: String]())
            let sessionID = try session.json(Session.self).sessionId
            func ask(_ text: String) async throws -> TestResponse {
                try await TestHTTP.send(
                    .POST, gateway + "/api/chat", headers: ["X-Session-ID": sessionID], json: ["messages": [["role": "user", "content": text]]]
                )
            }
            func usage() async throws -> Usage {
                let answer = try await TestHTTP.send(.GET, gateway + "/api/payments/usage", headers: Fixtures.bearer(owner.accessToken))
                try #require(answer.status == 200, "\(answer.status) \(answer.text)")
                return try answer.json(Usage.self)
            }
            func storedUserMessages() async throws -> Int {
                try await TestPostgres.count(stack.databases[.chat]!, "SELECT count(*) FROM messages WHERE role = 'user'")
            }

            for question in ["Do you ship abroad?", "What are your opening hours?"] {
                let answer = try await ask(question)
                #expect(answer.status == 200, "\(answer.text)")
                #expect(try answer.json(Answer.self).status == "complete")
            }
            // Each answer reached billing once, through chat's outbox.
            #expect(try await Polling.within(20) { try await usage().used == 2 } != nil, "billing counted both answers")
            let full = try await usage()
            #expect(full.plan == "trial" && full.monthlyQuota == 2 && !full.chatAllowed)

            // The third message is refused before anything is stored or answered.
            let refused = try await ask("And on Sundays?")
            #expect(refused.status == 402, "\(refused.text)")
            #expect(try refused.error().code == "QUOTA_EXCEEDED")
            #expect(try await storedUserMessages() == 2)

            // Paying for a plan opens a new period with its quota: chat answers again.
            let paid = try await TestHTTP.send(
                .POST, gateway + "/api/payments/process-payment",
                headers: Fixtures.bearer(owner.accessToken).merging(["Idempotency-Key": UUID().uuidString]) { $1 },
                json: ["token": "tok_sandbox_approved", "payment_method_id": "visa", "plan": "starter"]
            )
            #expect(paid.status == 200 || paid.status == 201, "\(paid.text)")
            let active = try await Polling.within(20) {
                let now = try await usage()
                return now.plan == "starter" && now.chatAllowed
            }
            #expect(active != nil, "the subscription is active")
            let again = try await ask("And on Sundays?")
            #expect(again.status == 200, "\(again.text)")
            #expect(try await Polling.within(20) { try await usage().used == 1 } != nil, "billing counted the paid period's answer")
        }
    }

    @Test func anExpiredTrialIsRefusedWith402() async throws {
        let overrides = ["ENTITLEMENT_CACHE_SECONDS": "0", "CHAT_STREAM_TOKEN_DELAY_MS": "0", "RATE_LIMIT_SESSION_PER_MINUTE": "1000"]
        try await TestStack.with(.auth, .billing, .tenancy, .chat, .gateway, overrides: overrides) { stack in
            let gateway = stack.url(.gateway)
            let owner = try await Fixtures.register(at: gateway, accountName: "Expired Books")
            let tenantID = try #require(UUID(uuidString: owner.tenantId))
            _ = try await TestPostgres.withClient(stack.databases[.billing]!) { client in
                try await client.query("UPDATE subscriptions SET trial_ends_at = now() - interval '1 day' WHERE tenant_id = \(tenantID)")
            }
            let session = try await TestHTTP.send(.POST, gateway + "/api/sessions/init", headers: ["X-Tenant-Slug": owner.tenantSlug], json: [String: String]())
            let sessionID = try session.json(Session.self).sessionId
            let refused = try await TestHTTP.send(
                .POST, gateway + "/api/chat", headers: ["X-Session-ID": sessionID], json: ["messages": [["role": "user", "content": "Hello?"]]]
            )
            #expect(refused.status == 402, "\(refused.text)")
            #expect(try await TestPostgres.count(stack.databases[.chat]!, "SELECT count(*) FROM messages") == 0)
        }
    }
}
