import Crypto
import Foundation
import HTTPTypes
import InternalAPI
import NIOHTTP1
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

/// The sandbox payment flow as a client lives it, through the gateway with auth, billing and
/// tenancy behind it: register (trial) → pay with a sandbox card → the sandbox's own signed
/// webhook → active subscription → tenancy's onboarding payment step completed by billing's event.
@Suite("billing sandbox flow through the gateway")
struct BillingSandboxFlowTests {
    static let secret = "e2e-sandbox-secret"

    static let overrides = ["RATE_LIMIT_AUTH_PER_MINUTE": "1000", "SANDBOX_WEBHOOK_SECRET": secret, "SANDBOX_PENDING_APPROVAL_SECONDS": "1"]

    /// A notification as MercadoPago (and the sandbox) signs it: HMAC-SHA256 over the documented manifest.
    static func signedWebhook(_ url: String, dataID: String, requestID: String = UUID().uuidString) async throws -> TestResponse {
        let ts = String(Int(Date().timeIntervalSince1970))
        let manifest = "id:\(dataID.lowercased());request-id:\(requestID);ts:\(ts);"
        let mac = HMAC<SHA256>.authenticationCode(for: Data(manifest.utf8), using: SymmetricKey(data: Data(secret.utf8)))
        let hex = mac.map { String(format: "%02x", $0) }.joined()
        return try await TestHTTP.send(
            .POST, url + "/api/payments/webhook?data.id=\(dataID)&type=payment",
            headers: ["x-signature": "ts=\(ts),v1=\(hex)", "x-request-id": requestID],
            body: #"{"action":"payment.updated","api_version":"v1","data":{"id":"\#(dataID)"},"live_mode":false,"type":"payment"}"#
        )
    }

    func transitions(_ stack: TestStack) async throws -> Int {
        try await TestPostgres.count(stack.databases[.billing]!, "SELECT count(*)::int FROM subscription_transitions")
    }

    @Test func payingWithASandboxCardActivatesAndCompletesTheOnboardingStep() async throws {
        try await TestStack.with(.auth, .billing, .tenancy, .gateway, overrides: Self.overrides) { stack in
            let gateway = stack.url(.gateway)
            let registered = try await Fixtures.register(at: gateway)
            let auth = Fixtures.bearer(registered.accessToken)
            let trial = try await TestHTTP.send(.GET, gateway + "/api/payments/subscription", headers: auth)
            #expect(try trial.json([String: JSONValue].self)["status"] == .string("trialing"))

            let paid = try await TestHTTP.send(
                .POST, gateway + "/api/payments/process-payment", headers: auth.merging(["Idempotency-Key": "e2e-1"]) { $1 },
                json: ["token": "tok_sandbox_approved", "payment_method_id": "visa", "plan": "pro", "email": registered.email]
            )
            #expect(paid.status == 200, "\(String(decoding: paid.body, as: UTF8.self))")
            let active = try await TestHTTP.send(.GET, gateway + "/api/payments/subscription", headers: auth)
            #expect(try active.json([String: JSONValue].self)["status"] == .string("active"))

            // The sandbox notifies billing by itself; billing's outbox tells tenancy.
            let billing = stack.databases[.billing]!
            let notified = try await Polling.within(10) {
                try await TestPostgres.count(billing, "SELECT count(*)::int FROM processed_webhooks") >= 1
            }
            #expect(notified != nil)
            let stepDone = try await Polling.within(15) {
                let status = try await TestHTTP.send(.GET, gateway + "/api/onboarding/status", headers: auth)
                guard status.status == 200, case .object(let progress)? = try status.json([String: JSONValue].self)["progress"] else { return false }
                return progress["step_payment_completed"] == .bool(true)
            }
            #expect(stepDone != nil)

            // A replay of the notification, through the gateway: acknowledged, nothing changes.
            let providerID = try await TestPostgres.withClient(billing) { client in
                try await client.query("SELECT provider_payment_id FROM payments").collect().first!.decode(String.self)
            }
            let before = try await transitions(stack)
            for _ in 0..<2 {
                let replay = try await Self.signedWebhook(gateway, dataID: providerID)
                #expect(replay.status == 200)
            }
            #expect(try await transitions(stack) == before)
            #expect(try await TestPostgres.count(billing, "SELECT count(*)::int FROM outbox_events WHERE type = 'billing.payment_completed'") == 1)
            // A forged one is refused.
            let forged = try await TestHTTP.send(
                .POST, gateway + "/api/payments/webhook?data.id=\(providerID)&type=payment",
                headers: ["x-signature": "ts=\(Int(Date().timeIntervalSince1970)),v1=00", "x-request-id": "x"], body: "{}"
            )
            #expect(forged.status == 400)
        }
    }

    @Test func aPendingPaymentIsApprovedByItsOwnLaterWebhookAndAnOlderOneChangesNothing() async throws {
        try await TestStack.with(.auth, .billing, .tenancy, .gateway, overrides: Self.overrides) { stack in
            let gateway = stack.url(.gateway)
            let registered = try await Fixtures.register(at: gateway)
            let auth = Fixtures.bearer(registered.accessToken)
            let paid = try await TestHTTP.send(
                .POST, gateway + "/api/payments/process-payment", headers: auth,
                json: ["token": "tok_sandbox_pending", "payment_method_id": "visa", "plan": "starter", "email": registered.email]
            )
            #expect(paid.status == 200)
            #expect(try paid.json([String: JSONValue].self)["status"] == .string("pending"))
            let activated = try await Polling.within(15) {
                let shown = try await TestHTTP.send(.GET, gateway + "/api/payments/subscription", headers: auth)
                return try shown.json([String: JSONValue].self)["status"] == .string("active")
            }
            #expect(activated != nil)
            let billing = stack.databases[.billing]!
            let before = try await transitions(stack)
            // The pending notification arriving again after the approval (out of order): nothing moves back.
            let providerID = try await TestPostgres.withClient(billing) { client in
                try await client.query("SELECT provider_payment_id FROM payments").collect().first!.decode(String.self)
            }
            #expect(try await Self.signedWebhook(gateway, dataID: providerID).status == 200)
            #expect(try await transitions(stack) == before)
            let shown = try await TestHTTP.send(.GET, gateway + "/api/payments/subscription", headers: auth)
            #expect(try shown.json([String: JSONValue].self)["status"] == .string("active"))
            #expect(try await TestPostgres.count(billing, "SELECT count(*)::int FROM payments WHERE status = 'approved'") == 1)
        }
    }
}
