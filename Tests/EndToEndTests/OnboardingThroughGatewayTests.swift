import Foundation
import HTTPTypes
import InternalAPI
import NIOHTTP1
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

/// Registration retried with an `Idempotency-Key` and an onboarding step completed by billing's
/// event, through the gateway like a client, with auth, billing and tenancy behind it.
@Suite("onboarding through the gateway")
struct OnboardingThroughGatewayTests {
    struct Status: Decodable {
        var progress: [String: Bool]
        var billingAvailable: Bool
    }

    static let overrides = ["RATE_LIMIT_AUTH_PER_MINUTE": "1000"]

    static func counts(_ stack: TestStack, email: String) async throws -> [Int] {
        [
            try await TestPostgres.count(stack.databases[.tenancy]!, "SELECT count(*)::int FROM tenants"),
            try await TestPostgres.count(stack.databases[.auth]!, "SELECT count(*)::int FROM users WHERE email = \(email)"),
            try await TestPostgres.count(stack.databases[.billing]!, "SELECT count(*)::int FROM subscriptions"),
        ]
    }

    @Test func aRegistrationRetriedWithItsKeyMakesOneTenant() async throws {
        try await TestStack.with(.auth, .billing, .tenancy, .gateway, overrides: Self.overrides) { stack in
            let url = stack.url(.gateway) + "/api/onboarding/register"
            let email = Fixtures.uniqueEmail("retry")
            let body = ["email": email, "password": Fixtures.password, "account_name": "Retry Bakery"]
            let key = "e2e-\(UUID())"

            // Eight at once with one key: one tenant; the others wait their turn (409) or get its result.
            let responses = try await withThrowingTaskGroup(of: TestResponse.self) { group in
                for _ in 0..<8 { group.addTask { try await TestHTTP.send(.POST, url, headers: ["Idempotency-Key": key], json: body) } }
                return try await group.reduce(into: [TestResponse]()) { $0.append($1) }
            }
            #expect(responses.allSatisfy { $0.status == 201 || $0.status == 409 }, "\(responses.map(\.status))")
            #expect(try await Self.counts(stack, email: email) == [1, 1, 1])

            // Retried after the fact: the first result, with fresh tokens, nothing new.
            let first = try responses.first { $0.status == 201 }.map { try $0.json(Fixtures.Registered.self) }
            let retried = try await TestHTTP.send(.POST, url, headers: ["Idempotency-Key": key], json: body)
            #expect(retried.status == 201)
            let again = try retried.json(Fixtures.Registered.self)
            #expect(again.tenantId == first?.tenantId)
            #expect(again.userId == first?.userId)
            #expect(again.tenantSlug == "retry-bakery")
            let me = try await TestHTTP.send(.GET, stack.url(.gateway) + "/api/auth/me", headers: Fixtures.bearer(again.accessToken))
            #expect(me.status == 200)
            #expect(try await Self.counts(stack, email: email) == [1, 1, 1])

            // The key with another body: 422, nothing changed.
            var other = body
            other["account_name"] = "Another Bakery"
            let reused = try await TestHTTP.send(.POST, url, headers: ["Idempotency-Key": key], json: other)
            #expect(reused.status == 422)
            #expect(try reused.error().code == "IDEMPOTENCY_KEY_REUSED")
            #expect(try await Self.counts(stack, email: email) == [1, 1, 1])

            let badKey = try await TestHTTP.send(.POST, url, headers: ["Idempotency-Key": String(repeating: "x", count: 300)], json: other)
            #expect(badKey.status == 400)
            #expect(try await Self.counts(stack, email: email) == [1, 1, 1])
        }
    }

    @Test func aPaymentEventCompletesItsStepAcrossARestartOfTenancy() async throws {
        try await TestStack.with(.auth, .billing, .tenancy, .gateway, overrides: Self.overrides) { stack in
            let registered = try await Fixtures.register(at: stack.url(.gateway))
            let event = try EventEnvelope(
                type: PaymentCompleted.type, source: "billing", payload: PaymentCompleted(tenantId: UUID(uuidString: registered.tenantId)!, plan: "pro")
            )
            // billing has no outbox yet: its relay's delivery is made here, signed as billing.
            await stack.stop(.tenancy)
            await #expect(throws: (any Error).self) {
                _ = try await stack.callInternal(.post, .tenancy, EventEnvelope.deliveryPath, as: .billing, json: event)
            }
            try await stack.start(.tenancy)
            let delivered = try await stack.callInternal(.post, .tenancy, EventEnvelope.deliveryPath, as: .billing, json: event)
            #expect(try delivered.json(EventReceipt.self).status == .applied)
            let redelivered = try await stack.callInternal(.post, .tenancy, EventEnvelope.deliveryPath, as: .billing, json: event)
            #expect(try redelivered.json(EventReceipt.self).status == .duplicate)
            #expect(try await TestPostgres.count(stack.databases[.tenancy]!, "SELECT count(*)::int FROM processed_events WHERE event_id = \(event.id)") == 1)

            // The gateway may still count tenancy as down for a health-check interval after the restart.
            var status = try await TestHTTP.send(.GET, stack.url(.gateway) + "/api/onboarding/status", headers: Fixtures.bearer(registered.accessToken))
            let deadline = ContinuousClock.now + .seconds(10)
            while status.status == 503, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(200))
                status = try await TestHTTP.send(.GET, stack.url(.gateway) + "/api/onboarding/status", headers: Fixtures.bearer(registered.accessToken))
            }
            #expect(status.status == 200)
            let progress = try status.json(Status.self).progress
            #expect(progress["step_payment_completed"] == true)
            #expect(progress.filter(\.value).count == 2)
        }
    }
}
