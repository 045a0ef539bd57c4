import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import InternalAPI
import Logging
import NIOCore
import PostgresNIO
import ServiceCore
import Synchronization
import TestSupport
import Testing

@testable import BillingApp

/// Billing's time in tests: moved by hand, so trials, periods and grace days pass without sleeping.
final class ManualClock: BillingClock {
    private let value: Mutex<Date>

    init(_ start: Date = Date()) { value = Mutex(start) }

    func now() -> Date { value.withLock { $0 } }

    func advance(days: Double) { value.withLock { $0 = $0.addingTimeInterval(days * 86_400) } }

    func advance(seconds: Double) { value.withLock { $0 = $0.addingTimeInterval(seconds) } }
}

/// billing's router driven in this process (HummingbirdTesting's `.router`) against a real
/// PostgreSQL database, with a `ManualClock`. auth runs beside it only to publish the JWKS; tokens
/// for any tenant and role come from auth's key. The sandbox sends no webhooks of its own here
/// (`SANDBOX_WEBHOOK_URL=none`): tests send them, signed as MercadoPago signs.
struct BillingRouterHarness: Sendable {
    struct Answer: Sendable {
        var status: Int
        var body: Data

        func json<T: Decodable>(_ type: T.Type = T.self) throws -> T { try JSONCoding.decoder.decode(T.self, from: body) }
        func error() throws -> ErrorBody { try json(ErrorBody.self) }
        func object() throws -> [String: Any] { try #require(try JSONSerialization.jsonObject(with: body) as? [String: Any]) }
    }

    static let webhookSecret = "sandbox-webhook-secret"

    let client: any TestClientProtocol
    let stack: TestStack
    let forge: TokenForge
    let clock: ManualClock
    let config: BillingConfig

    var database: DatabaseConfig { stack.databases[.billing]! }

    static func with(
        _ overrides: [String: String] = [:], clock: ManualClock = ManualClock(), body: @escaping @Sendable (BillingRouterHarness) async throws -> Void
    ) async throws {
        let stack = try await TestStack.make()
        do {
            try await stack.start(.auth)
            let forge = try await TokenForge.fromAuthDatabase(stack.databases[.auth]!)
            var environment = stack.environment(for: .billing)
            environment["SANDBOX_WEBHOOK_URL"] = "none"
            environment["BILLING_SCHEDULER_SECONDS"] = "86400"
            environment.merge(overrides) { _, new in new }
            let config = try BillingConfig(settings: Settings.variables(environment))
            let app = try await buildBillingApplication(config: config, clock: clock)
            try await app.test(.router) { client in
                try await body(BillingRouterHarness(client: client, stack: stack, forge: forge, clock: clock, config: config))
            }
            await stack.stopAll()
        } catch {
            await stack.stopAll()
            throw error
        }
    }

    func send(
        _ method: HTTPRequest.Method, _ path: String, token: String? = nil, json: (any Encodable)? = nil, raw: String? = nil,
        headers extra: HTTPFields = [:]
    ) async throws -> Answer {
        var headers = extra
        if let token { headers[.authorization] = "Bearer \(token)" }
        var body: ByteBuffer?
        if let json {
            body = ByteBuffer(bytes: try JSONCoding.encoder.encode(json))
        } else if let raw {
            body = ByteBuffer(string: raw)
        }
        if body != nil { headers[.contentType] = "application/json" }
        let response = try await client.execute(uri: path, method: method, headers: headers, body: body)
        return Answer(status: Int(response.status.code), body: Data(response.body.readableBytesView))
    }

    func token(_ tenant: UUID, _ role: Role = .owner) async throws -> String {
        try await forge.sign(tenantID: tenant, role: role)
    }

    /// A tenant on a trial ending `days` from the clock's now, as registration leaves it.
    @discardableResult
    func trial(endingInDays days: Double = 14) async throws -> UUID {
        let tenant = UUID()
        let endsAt = clock.now().addingTimeInterval(days * 86_400)
        try await execute("INSERT INTO subscriptions (id, tenant_id, plan, status, trial_ends_at) VALUES (\(UUID()), \(tenant), 'trial', 'trialing', \(endsAt))")
        return tenant
    }

    /// Pays `plan` with a sandbox card token through process-payment.
    func pay(_ tenant: UUID, plan: String = "pro", token cardToken: String = SandboxPaymentProvider.Token.approved, key: String = UUID().uuidString) async throws -> Answer {
        try await send(
            .post, "/api/payments/process-payment", token: try await token(tenant),
            json: ["token": cardToken, "payment_method_id": "visa", "plan": plan, "email": "payer@example.com"],
            headers: [HTTPField.Name("Idempotency-Key")!: key]
        )
    }

    /// A MercadoPago-format notification for provider payment `id`, signed with `secret` at `time`.
    func webhook(_ id: String, secret: String = webhookSecret, time: Date? = nil, requestID: String = UUID().uuidString, signature: String? = nil) async throws -> Answer {
        let signer = MercadoPagoWebhookSignature(secret: secret, tolerance: 300)
        let header = signature ?? signer.header(dataID: id, requestID: requestID, time: time ?? clock.now())
        return try await send(
            .post, "/api/payments/webhook?data.id=\(id)&type=payment",
            raw: #"{"action":"payment.updated","api_version":"v1","data":{"id":"\#(id)"},"live_mode":false,"type":"payment"}"#,
            headers: [HTTPField.Name("x-signature")!: header, HTTPField.Name("x-request-id")!: requestID]
        )
    }

    func status(of tenant: UUID) async throws -> String? {
        try await value("SELECT status FROM subscriptions WHERE tenant_id = \(tenant)")
    }

    func count(_ query: PostgresQuery) async throws -> Int {
        try await TestPostgres.count(database, query)
    }

    func value<T: PostgresDecodable & Sendable>(_ query: PostgresQuery, as type: T.Type = T.self) async throws -> T? {
        try await TestPostgres.withClient(database) { client in
            for try await value in try await client.query(query).decode(T.self) { return value }
            return nil
        }
    }

    func execute(_ query: PostgresQuery) async throws {
        try await TestPostgres.withClient(database) { client in _ = try await client.query(query).collect() }
    }

    /// Every table a bad request must leave as it was, as one comparable snapshot.
    func snapshot() async throws -> [Int] {
        var counts: [Int] = []
        for table in ["payments", "subscription_transitions", "processed_webhooks", "refunds", "manual_payment_audit", "sandbox_payments", "outbox_events"] {
            counts.append(try await count(PostgresQuery(unsafeSQL: "SELECT count(*)::int FROM \(table)")))
        }
        counts.append(try await count("SELECT count(*)::int FROM subscriptions WHERE status = 'active' OR cancel_at_period_end OR pending_plan IS NOT NULL"))
        return counts
    }

    /// One pass of the lifecycle job, as the service runs it, on this harness's clock.
    func runScheduler(graceDays: Int = 7) async throws -> Int? {
        try await TestPostgres.withDatabase(database) { database in
            try await scheduler(database, graceDays: graceDays).runPass()
        }
    }

    func scheduler(_ database: Database, graceDays: Int = 7) -> SubscriptionScheduler {
        let ledger = SubscriptionLedger(outbox: Self.outbox)
        let provider = SandboxPaymentProvider(database: database, clock: clock, pendingApproval: 5, notifier: nil)
        return SubscriptionScheduler(
            database: database, ledger: ledger, applier: ProviderPaymentApplier(ledger: ledger), provider: provider, clock: clock,
            graceDays: graceDays, interval: .seconds(3600), logger: Logger(label: "test-scheduler")
        )
    }

    /// billing's event types with no subscriber: the scheduler built here writes no deliveries (the
    /// service's own outbox, under test through the router, does).
    static let outbox = Outbox(routes: [PaymentCompleted.type: [], SubscriptionChanged.type: [], TrialEnding.type: [], TrialEnded.type: []])
}
