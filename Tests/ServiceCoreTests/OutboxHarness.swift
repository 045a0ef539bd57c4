import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import InternalAPI
import LocalPostgres
import Logging
import NIOHTTP1
import PostgresNIO
import Prometheus
import ServiceCore
import Synchronization
import TestSupport
import Testing

/// The payload of the event the outbox tests send: a credit granted to a tenant.
struct CreditGranted: Codable, Equatable {
    static let type: EventType = "billing.credit_granted"

    var tenantId: UUID
    var amountCents: Int64
}

/// What the subscriber saw at its door, before deduplication: each event's arrivals and request
/// id, the acknowledgements to "lose", and how often its handler ran.
final class ReceiverProbe: Sendable {
    private struct State {
        var arrivals: [UUID: Int] = [:]
        var requestIDs: [UUID: String] = [:]
        var acknowledgementsToLose: Set<UUID> = []
        var handled: [UUID: Int] = [:]
    }

    private let state = Mutex(State())

    func arrived(_ id: UUID, requestID: String?) {
        state.withLock { state in
            state.arrivals[id, default: 0] += 1
            state.requestIDs[id] = requestID
        }
    }

    /// The next answer for `id` is replaced by a 500 after the event was applied and committed.
    func loseAcknowledgement(of id: UUID) {
        state.withLock { _ = $0.acknowledgementsToLose.insert(id) }
    }

    func takeLostAcknowledgement(of id: UUID) -> Bool {
        state.withLock { $0.acknowledgementsToLose.remove(id) != nil }
    }

    func handled(_ id: UUID) {
        state.withLock { $0.handled[id, default: 0] += 1 }
    }

    var arrivals: [UUID: Int] { state.withLock { $0.arrivals } }
    var handlerRuns: [UUID: Int] { state.withLock { $0.handled } }
    func requestID(of id: UUID) -> String? { state.withLock { $0.requestIDs[id] } }
}

/// Counts each delivery as it reaches the route (after the caller token check) and loses
/// acknowledgements on request: the answer goes out as a 500 though the event was applied.
struct ProbeMiddleware<Context: RequestContext>: RouterMiddleware {
    let probe: ReceiverProbe

    private struct EventID: Decodable {
        var id: UUID
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var request = request
        let body = try await request.collectBody(upTo: context.maxUploadSize)
        let id = try? JSONCoding.decoder.decode(EventID.self, from: Data(body.readableBytesView)).id
        if let id { probe.arrived(id, requestID: request.headers[.xRequestID]) }
        let response = try await next(request, context)
        if let id, response.status == .ok, probe.takeLostAcknowledgement(of: id) {
            throw AppError.internalError("acknowledgement lost on purpose")
        }
        return response
    }
}

/// A subscribing service built the way the suite builds one (ServiceFoundation, its internal
/// group, `EventReceiver`), on a fixed port so it can be stopped and started again there.
final class TestSubscriber: Sendable {
    static let name = "ledger"
    static let migrations = [
        Migration(1, "receive_events", OutboxSchema.receiverStatements),
        Migration(2, "create_credits", ["CREATE TABLE credits (event_id uuid NOT NULL, tenant_id uuid NOT NULL, amount_cents bigint NOT NULL)"]),
    ]

    let port: Int
    let database: DatabaseConfig
    let probe = ReceiverProbe()
    let handlerDelay: Duration
    private let runner = Mutex<ServiceRunner?>(nil)

    init(database: DatabaseConfig, handlerDelay: Duration) throws {
        self.port = try TestPorts.next()
        self.database = database
        self.handlerDelay = handlerDelay
    }

    var url: String { "http://127.0.0.1:\(port)" }

    func start() async throws {
        let config = CommonConfig(
            server: ServerConfig(host: "127.0.0.1", port: port, maxBodyBytes: 1 << 20, logLevel: .critical, shutdownGraceSeconds: 5),
            database: database, serviceKeyPEM: CallerIdentity.makeKeyPair().privateKeyPEM,
            callerPublicKeys: [OutboxHarness.source: TestStack.serviceKeys[.billing]!.publicKeyPEM]
        )
        let foundation = try await ServiceFoundation(name: Self.name, config: config)
        let routes = foundation.makeRouter()
        let (probe, delay) = (self.probe, handlerDelay)
        let receiver = EventReceiver(
            database: foundation.database,
            handlers: [
                CreditGranted.type: { event, connection, logger in
                    let credit = try event.decodePayload(as: CreditGranted.self)
                    try await connection.query(
                        "INSERT INTO credits (event_id, tenant_id, amount_cents) VALUES (\(event.id), \(credit.tenantId), \(credit.amountCents))",
                        logger: logger
                    )
                    probe.handled(event.id)
                    if delay > .zero { try await Task.sleep(for: delay) }
                }
            ]
        )
        receiver.addRoutes(to: foundation.internalGroup(routes, accepting: [OutboxHarness.source]).add(middleware: ProbeMiddleware(probe: probe)))
        let app = foundation.makeApplication(routes: routes, migrations: Self.migrations)
        runner.withLock { $0 = ServiceRunner([app]) }
        try await TestHTTP.waitUntilLive(url, timeout: .seconds(20))
    }

    /// Stops gracefully and waits until the port refuses connections.
    func stop() async {
        guard let runner = runner.withLock({ $0.take() }) else { return }
        await runner.stop()
        let deadline = ContinuousClock.now + .seconds(10)
        while !ChildProcess.isFree(port: port), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }
}

/// A sending service's database with the outbox (and a `grants` table standing for its own
/// changes), a subscriber with a database of its own, and relays to taste.
struct OutboxHarness: Sendable {
    static let source = "billing"
    static let logger: Logger = {
        var logger = Logger(label: "outbox-test")
        logger.logLevel = .critical
        return logger
    }()

    let sender: Database
    let senderConfig: DatabaseConfig
    let receiverClient: PostgresClient
    let subscriber: TestSubscriber
    let outbox: Outbox

    /// Runs `body` with both databases migrated and the subscriber started when `receiverUp`.
    static func with<T: Sendable>(
        receiverUp: Bool = true,
        handlerDelay: Duration = .zero,
        clientTimeout: TimeAmount = .seconds(8),
        _ body: (OutboxHarness) async throws -> T
    ) async throws -> T {
        let senderConfig = try await TestPostgres.freshDatabase("outbox_sender")
        let receiverConfig = try await TestPostgres.freshDatabase("outbox_receiver")
        let http = HTTPClient.makeInternal()
        let subscriber = try TestSubscriber(database: receiverConfig, handlerDelay: handlerDelay)
        let identity = try await CallerIdentity(name: source, privateKeyPEM: TestStack.serviceKeys[.billing]!.privateKeyPEM)
        let client = InternalClient(service: TestSubscriber.name, baseURL: subscriber.url, http: http, identity: identity, timeout: clientTimeout)
        let outbox = Outbox(routes: [CreditGranted.type: [client], "billing.nobody_listens": []])
        do {
            let result = try await TestPostgres.withDatabase(senderConfig) { sender in
                try await TestPostgres.withClient(receiverConfig) { receiverClient in
                    try await MigrationRunner([
                        Migration(1, "create_outbox", OutboxSchema.senderStatements),
                        Migration(2, "create_grants", ["CREATE TABLE grants (id uuid PRIMARY KEY, tenant_id uuid NOT NULL)"]),
                    ]).run(on: sender.client, logger: logger)
                    try await MigrationRunner(TestSubscriber.migrations).run(on: receiverClient, logger: logger)
                    if receiverUp { try await subscriber.start() }
                    return try await body(
                        OutboxHarness(
                            sender: sender, senderConfig: senderConfig, receiverClient: receiverClient, subscriber: subscriber, outbox: outbox
                        )
                    )
                }
            }
            await subscriber.stop()
            try await http.shutdown()
            return result
        } catch {
            await subscriber.stop()
            try? await http.shutdown()
            throw error
        }
    }

    /// Small waits so that retries happen within a test's time. The lease outlives the client's
    /// timeout (8 s: generous, since every test runs at once on a small machine and a call that
    /// times out is sent again).
    static func configuration(
        pollInterval: Duration = .milliseconds(100),
        batchSize: Int = 50,
        lease: Duration = .seconds(10)
    ) -> OutboxRelay.Configuration {
        OutboxRelay.Configuration(
            pollInterval: pollInterval, batchSize: batchSize,
            retry: OutboxRetryPolicy(base: .milliseconds(50), cap: .milliseconds(200)), lease: lease,
            retention: OutboxRelay.defaultConfiguration.retention
        )
    }

    func relay(
        _ configuration: OutboxRelay.Configuration = OutboxHarness.configuration(),
        on database: Database? = nil,
        metrics: ServiceMetrics = ServiceMetrics()
    ) -> OutboxRelay {
        OutboxRelay(outbox: outbox, database: database ?? sender, configuration: configuration, metrics: metrics, logger: Self.logger)
    }

    /// Grants credits in one transaction, each with its event; returns the events.
    @discardableResult
    func grant(_ count: Int = 1, requestID: String? = nil) async throws -> [EventEnvelope] {
        var logger = Self.logger
        if let requestID { logger[metadataKey: RequestID.metadataKey] = .string(requestID) }
        let events = try (0..<count).map { _ in
            try EventEnvelope(type: CreditGranted.type, source: Self.source, payload: CreditGranted(tenantId: UUID(), amountCents: 1_250))
        }
        let outbox = self.outbox
        try await sender.transaction(logger: logger) { [logger] connection in
            for event in events {
                let credit = try event.decodePayload(as: CreditGranted.self)
                try await connection.query("INSERT INTO grants (id, tenant_id) VALUES (\(event.id), \(credit.tenantId))", logger: logger)
                try await outbox.enqueue(event, on: connection, logger: logger)
            }
        }
        return events
    }

    /// Each delivery row of the sender, by event id.
    func deliveries() async throws -> [UUID: DeliveryRow] {
        let rows = try await sender.query(
            "SELECT event_id, attempts, delivered_at IS NOT NULL, claim_id IS NOT NULL, last_error FROM outbox_deliveries",
            logger: Self.logger
        )
        return Dictionary(uniqueKeysWithValues: try rows.decode((UUID, Int, Bool, Bool, String?).self).map { row in
            (row.0, DeliveryRow(attempts: row.1, delivered: row.2, claimed: row.3, lastError: row.4))
        })
    }

    func senderCount(_ query: PostgresQuery) async throws -> Int {
        try await sender.query(query, logger: Self.logger).decode(Int.self).first ?? 0
    }

    func receiverCount(_ query: PostgresQuery) async throws -> Int {
        for try await value in try await receiverClient.query(query, logger: Self.logger).decode(Int.self) { return value }
        return 0
    }

    /// Credits applied per event id, from the subscriber's database.
    func appliedCredits() async throws -> [UUID: Int] {
        var applied: [UUID: Int] = [:]
        let rows = try await receiverClient.query("SELECT event_id, count(*)::int FROM credits GROUP BY event_id", logger: Self.logger)
        for try await (id, count) in rows.decode((UUID, Int).self) { applied[id] = count }
        return applied
    }

    /// Posts an envelope to the subscriber as a service would.
    func post(_ body: (any Encodable)? = nil, raw: String? = nil, token: Bool = true) async throws -> TestResponse {
        let url = subscriber.url + EventEnvelope.deliveryPath
        let bytes = try body.map { Array(try JSONCoding.encoder.encode($0)) } ?? raw.map { Array($0.utf8) }
        // As billing (the source) signs it, for the subscriber (the audience).
        let identity = try await CallerIdentity(name: Self.source, privateKeyPEM: TestStack.serviceKeys[.billing]!.privateKeyPEM)
        let headers = token
            ? ["X-Caller-Token": try await identity.token(for: TestSubscriber.name, method: .post, target: EventEnvelope.deliveryPath, body: bytes.map { ByteBuffer(bytes: $0) })]
            : [:]
        return try await TestHTTP.send(.POST, url, headers: headers, bytes: bytes)
    }
}

struct DeliveryRow: Equatable {
    var attempts: Int
    var delivered: Bool
    var claimed: Bool
    var lastError: String?
}

/// The entries of `counts` that are not 1, with the ids of `ids` it lacks as 0: empty when each
/// of `ids` was counted exactly once and nothing else was.
func notExactlyOnce(_ counts: [UUID: Int], _ ids: Set<UUID>) -> [UUID: Int] {
    var wrong = counts.filter { $0.value != 1 || !ids.contains($0.key) }
    for id in ids where counts[id] == nil { wrong[id] = 0 }
    return wrong
}

/// Polls `condition` until it holds; fails the test after `timeout`.
func eventually(
    _ what: String, timeout: Duration = .seconds(15), sourceLocation: SourceLocation = #_sourceLocation, _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while try await !condition() {
        guard ContinuousClock.now < deadline else {
            Issue.record("timed out waiting until \(what)", sourceLocation: sourceLocation)
            throw TimeoutError()
        }
        try await Task.sleep(for: .milliseconds(20))
    }
}

extension ServiceMetrics {
    /// The value of one sample in the Prometheus text, e.g. `outbox_delivered_total{subscriber="ledger"}`.
    func sample(_ name: String) -> Double? {
        registry.emitToString().split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
    }
}
