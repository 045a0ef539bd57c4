import Foundation
import InternalAPI
import Logging
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

/// The transactional outbox end to end: real PostgreSQL for sender and subscriber, real HTTP
/// between them, the subscriber built as a service is.
@Suite("outbox", .timeLimit(.minutes(1)))
struct OutboxTests {
    @Test func committedEventIsDeliveredAtOnceAndAppliedOnce() async throws {
        try await OutboxHarness.with { harness in
            // A poll interval far beyond the test: only the commit's notification can wake the relay.
            let relay = ServiceRunner([harness.relay(OutboxHarness.configuration(pollInterval: .seconds(60)))])
            try await Task.sleep(for: .milliseconds(200))
            let start = ContinuousClock.now
            let event = try #require(try await harness.grant(requestID: "req-outbox-1").first)

            try await eventually("the event is delivered", timeout: .seconds(5)) { try await harness.deliveries()[event.id]?.delivered == true }
            #expect(ContinuousClock.now - start < .seconds(3))
            await relay.stop()

            #expect(try await harness.deliveries() == [event.id: DeliveryRow(attempts: 1, delivered: true, claimed: false, lastError: nil)])
            #expect(try await harness.appliedCredits() == [event.id: 1])
            let processed = try await harness.receiverClient.query(
                "SELECT type || ' from ' || source FROM processed_events WHERE event_id = \(event.id)", logger: OutboxHarness.logger
            ).collect().map { try $0.decode(String.self) }
            #expect(processed == ["billing.credit_granted from billing"])
            #expect(harness.subscriber.probe.arrivals == [event.id: 1])
            // The subscriber logs the delivery under the request id of the request that caused the event.
            #expect(harness.subscriber.probe.requestID(of: event.id) == "req-outbox-1")
        }
    }

    @Test func eventOfARolledBackTransactionIsNeverDelivered() async throws {
        try await OutboxHarness.with { harness in
            let relay = ServiceRunner([harness.relay()])
            struct Abandoned: Error {}
            let doomed = try EventEnvelope(
                type: CreditGranted.type, source: OutboxHarness.source, payload: CreditGranted(tenantId: UUID(), amountCents: 1)
            )
            let outbox = harness.outbox
            await #expect(throws: Abandoned.self) {
                try await harness.sender.transaction(logger: OutboxHarness.logger) { connection in
                    try await connection.query("INSERT INTO grants (id, tenant_id) VALUES (\(doomed.id), \(UUID()))", logger: OutboxHarness.logger)
                    try await outbox.enqueue(doomed, on: connection, logger: OutboxHarness.logger)
                    throw Abandoned()
                }
            }
            // A type missing from the routing table is refused, taking its transaction down with it.
            await #expect(throws: OutboxError.self) {
                try await harness.sender.transaction(logger: OutboxHarness.logger) { connection in
                    try await connection.query("INSERT INTO grants (id, tenant_id) VALUES (\(UUID()), \(UUID()))", logger: OutboxHarness.logger)
                    let undeclared = EventEnvelope(type: "billing.undeclared", source: OutboxHarness.source, payload: [:])
                    try await outbox.enqueue(undeclared, on: connection, logger: OutboxHarness.logger)
                }
            }
            // A declared type nobody subscribes to writes nothing.
            try await harness.sender.transaction(logger: OutboxHarness.logger) { connection in
                let unheard = EventEnvelope(type: "billing.nobody_listens", source: OutboxHarness.source, payload: [:])
                try await outbox.enqueue(unheard, on: connection, logger: OutboxHarness.logger)
            }
            #expect(try await harness.senderCount("SELECT count(*)::int FROM outbox_events") == 0)
            #expect(try await harness.senderCount("SELECT count(*)::int FROM grants") == 0)

            // Once a later event has gone through, the relay has certainly looked past the rolled-back one.
            let committed = try #require(try await harness.grant().first)
            try await eventually("the committed event is delivered") { try await harness.deliveries()[committed.id]?.delivered == true }
            await relay.stop()
            #expect(harness.subscriber.probe.arrivals == [committed.id: 1])
            #expect(try await harness.appliedCredits() == [committed.id: 1])
            #expect(try await harness.receiverCount("SELECT count(*)::int FROM processed_events") == 1)
        }
    }

    @Test func eventWaitsWhileTheSubscriberIsDownAndArrivesOnceItIsUp() async throws {
        try await OutboxHarness.with(receiverUp: false) { harness in
            let metrics = ServiceMetrics()
            let relay = ServiceRunner([harness.relay(metrics: metrics)])
            let event = try #require(try await harness.grant().first)

            try await eventually("three attempts have failed") { try await harness.deliveries()[event.id]?.attempts ?? 0 >= 3 }
            let waiting = try #require(try await harness.deliveries()[event.id])
            #expect(!waiting.delivered)
            #expect(waiting.lastError?.contains("not reachable") == true)
            #expect(try await harness.receiverCount("SELECT count(*)::int FROM processed_events") == 0)

            try await harness.subscriber.start()
            try await eventually("the event is delivered") { try await harness.deliveries()[event.id]?.delivered == true }
            await relay.stop()

            let delivered = try #require(try await harness.deliveries()[event.id])
            #expect(delivered.attempts >= 4)
            #expect(!delivered.claimed)
            // Delivery is at least once: on a machine busy enough for the first call to outlast the
            // client's 2 s timeout, the retry arrives too. It must never be applied twice.
            #expect(harness.subscriber.probe.arrivals.keys.sorted() == [event.id])
            #expect((1...2).contains(harness.subscriber.probe.arrivals[event.id] ?? 0))
            #expect(try await harness.appliedCredits() == [event.id: 1])
            #expect(metrics.sample(#"outbox_delivered_total{subscriber="ledger"}"#) == 1)
            #expect(metrics.sample(#"outbox_delivery_failures_total{subscriber="ledger",reason="unreachable"}"#) ?? 0 >= 3)
        }
    }

    @Test func eventWhoseAcknowledgementWasLostIsAppliedOnce() async throws {
        try await OutboxHarness.with { harness in
            let event = try #require(try await harness.grant().first)
            harness.subscriber.probe.loseAcknowledgement(of: event.id)
            let relay = ServiceRunner([harness.relay()])
            try await eventually("the event is delivered") { try await harness.deliveries()[event.id]?.delivered == true }
            await relay.stop()

            // Applied and committed, answered 500; delivered again, recognised, acknowledged.
            #expect(harness.subscriber.probe.arrivals == [event.id: 2])
            #expect(harness.subscriber.probe.handlerRuns == [event.id: 1])
            #expect(try await harness.appliedCredits() == [event.id: 1])
            let row = try #require(try await harness.deliveries()[event.id])
            #expect(row.attempts == 2)
            #expect(row.lastError?.contains("answered 500") == true)
            // A third copy, say from an operator replaying it, is a duplicate too.
            let again = try await harness.post(event)
            #expect(again.status == 200)
            #expect(try again.json(EventReceipt.self) == EventReceipt(status: .duplicate))
            #expect(try await harness.appliedCredits() == [event.id: 1])
        }
    }

    @Test func twoRelaysOnOneDatabaseDeliverEachEventOnce() async throws {
        try await OutboxHarness.with { harness in
            let before = try await harness.grant(100)
            try await TestPostgres.withDatabase(harness.senderConfig) { replicaDatabase in
                let (firstMetrics, secondMetrics) = (ServiceMetrics(), ServiceMetrics())
                let configuration = OutboxHarness.configuration(batchSize: 2)
                let first = ServiceRunner([harness.relay(configuration, metrics: firstMetrics)])
                let second = ServiceRunner([harness.relay(configuration, on: replicaDatabase, metrics: secondMetrics)])
                var during: [EventEnvelope] = []
                for _ in 0..<10 { during += try await harness.grant(10) }
                try await eventually("all 200 are delivered") {
                    try await harness.senderCount("SELECT count(*)::int FROM outbox_deliveries WHERE delivered_at IS NOT NULL") == 200
                }
                await first.stop()
                await second.stop()

                let ids = Set((before + during).map(\.id))
                #expect(ids.count == 200)
                // Exactly one call per event reached the subscriber: the replicas never both sent one.
                #expect(notExactlyOnce(harness.subscriber.probe.arrivals, ids) == [:])
                #expect(notExactlyOnce(harness.subscriber.probe.handlerRuns, ids) == [:])
                #expect(notExactlyOnce(try await harness.appliedCredits(), ids) == [:])
                #expect(try await harness.deliveries().values.allSatisfy { $0.attempts == 1 && $0.delivered && !$0.claimed })
                let counted = [firstMetrics, secondMetrics].map { $0.sample(#"outbox_delivered_total{subscriber="ledger"}"#) ?? 0 }
                #expect(counted.reduce(0, +) == 200)
            }
        }
    }

    @Test func gracefulShutdownMidwayLosesNothing() async throws {
        try await OutboxHarness.with(handlerDelay: .milliseconds(5)) { harness in
            let events = try await harness.grant(200)
            let first = ServiceRunner([harness.relay(OutboxHarness.configuration(batchSize: 5))])
            try await eventually("deliveries are under way") { harness.subscriber.probe.arrivals.count >= 30 }
            await first.stop()

            // The batch in flight finished and was recorded: no claim left behind, every recorded
            // delivery applied, and the rest still waiting.
            let stopped = try await harness.deliveries()
            let delivered = Set(stopped.filter(\.value.delivered).keys)
            #expect(delivered.count >= 30 && delivered.count < 200)
            #expect(stopped.values.allSatisfy { !$0.claimed })
            #expect(Set(try await harness.appliedCredits().keys) == delivered)

            let second = ServiceRunner([harness.relay()])
            try await eventually("the rest is delivered") {
                try await harness.senderCount("SELECT count(*)::int FROM outbox_deliveries WHERE delivered_at IS NOT NULL") == 200
            }
            await second.stop()
            let ids = Set(events.map(\.id))
            #expect(notExactlyOnce(harness.subscriber.probe.arrivals, ids) == [:])
            #expect(notExactlyOnce(try await harness.appliedCredits(), ids) == [:])
            #expect(try await harness.deliveries().values.allSatisfy { $0.attempts == 1 })
        }
    }

    @Test func claimsOfACrashedRelayComeBackWhenTheirLeaseEnds() async throws {
        try await OutboxHarness.with(handlerDelay: .milliseconds(300), clientTimeout: .seconds(1)) { harness in
            let events = try await harness.grant(5)
            let configuration = OutboxHarness.configuration(lease: .milliseconds(1_500))
            let crashing = Task { try await harness.relay(configuration).run() }
            try await eventually("calls are in flight") { !harness.subscriber.probe.arrivals.isEmpty }
            crashing.cancel()
            _ = try? await crashing.value
            #expect(try await harness.deliveries().values.contains { $0.claimed && !$0.delivered })

            let start = ContinuousClock.now
            let successor = ServiceRunner([harness.relay(configuration)])
            try await eventually("every event is delivered") {
                try await harness.senderCount("SELECT count(*)::int FROM outbox_deliveries WHERE delivered_at IS NOT NULL") == 5
            }
            await successor.stop()
            // Not before the crashed relay's lease ran out.
            #expect(ContinuousClock.now - start > .milliseconds(800))
            let ids = Set(events.map(\.id))
            #expect(notExactlyOnce(try await harness.appliedCredits(), ids) == [:])
            #expect(try await harness.receiverCount("SELECT count(*)::int FROM processed_events") == 5)
        }
    }

    @Test func subscriberAnswersEachDeliveryByWhatItDid() async throws {
        try await OutboxHarness.with { harness in
            let credit = CreditGranted(tenantId: UUID(), amountCents: 990)
            let event = try EventEnvelope(type: CreditGranted.type, source: "billing", payload: credit)
            #expect(try await harness.post(event).json(EventReceipt.self) == EventReceipt(status: .applied))
            #expect(try await harness.post(event).json(EventReceipt.self) == EventReceipt(status: .duplicate))
            #expect(try await harness.appliedCredits() == [event.id: 1])

            // Unknown types are acknowledged without being recorded.
            let unknown = EventEnvelope(type: "billing.something_new", source: "billing", payload: ["x": .integer(1)])
            let ignored = try await harness.post(unknown)
            #expect(ignored.status == 200)
            #expect(try ignored.json(EventReceipt.self) == EventReceipt(status: .ignored))

            // A handler that fails (here: the payload lacks a field) records nothing, so a corrected retry applies.
            var broken = try EventEnvelope(type: CreditGranted.type, source: "billing", payload: credit)
            broken.payload["amount_cents"] = nil
            let refused = try await harness.post(broken)
            #expect(refused.status == 422)
            #expect(try refused.error().fields?["amount_cents"] != nil)
            #expect(try await harness.receiverCount("SELECT count(*)::int FROM processed_events WHERE event_id = \(broken.id)") == 0)
            broken.payload["amount_cents"] = .integer(5)
            #expect(try await harness.post(broken).json(EventReceipt.self) == EventReceipt(status: .applied))

            #expect(try await harness.receiverCount("SELECT count(*)::int FROM processed_events") == 2)
            #expect(try await harness.post(raw: "{not json").status == 400)
            let envelope = #"{"id":"\#(UUID())","source":"billing","occurred_at":"2025-01-01T00:00:00Z","#
            #expect(try await harness.post(raw: envelope + #""type":"billing.credit_granted","payload":[]}"#).error().fields?["payload"] != nil)
            #expect(try await harness.post(raw: envelope + #""type":"","payload":{}}"#).error().fields?["type"] != nil)
            #expect(try await harness.post(event, token: false).status == 401)
        }
    }

    @Test func purgeRemovesOnlyOldEventsDeliveredToEverySubscriber() async throws {
        try await OutboxHarness.with(receiverUp: false) { harness in
            let events = try await harness.grant(3)
            let (oldDelivered, oldPending, recentDelivered) = (events[0].id, events[1].id, events[2].id)
            let logger = OutboxHarness.logger
            try await harness.sender.query(
                "UPDATE outbox_events SET created_at = now() - interval '8 days' WHERE id IN (\(oldDelivered), \(oldPending))", logger: logger
            )
            try await harness.sender.query(
                "UPDATE outbox_deliveries SET delivered_at = now() WHERE event_id IN (\(oldDelivered), \(recentDelivered))", logger: logger
            )
            #expect(try await harness.relay().purgeDelivered(olderThan: .seconds(7 * 86_400)) == 1)
            #expect(Set(try await harness.deliveries().keys) == [oldPending, recentDelivered])
            #expect(try await harness.senderCount("SELECT count(*)::int FROM outbox_events") == 2)
        }
    }
}

/// The parts of the outbox that need no database.
@Suite("outbox parts")
struct OutboxPartsTests {
    @Test func retryWaitsDoubleUpToTheCapWithJitter() {
        let policy = OutboxRetryPolicy(base: .seconds(1), cap: .seconds(60))
        #expect(policy.delay(afterFailures: 1, random: 1) == .seconds(1))
        #expect(policy.delay(afterFailures: 1, random: 0) == .milliseconds(500))
        #expect(policy.delay(afterFailures: 4, random: 1) == .seconds(8))
        #expect(policy.delay(afterFailures: 7, random: 1) == .seconds(60))
        #expect(policy.delay(afterFailures: 1_000, random: 0) == .seconds(30))
        #expect(policy.delay(afterFailures: 0, random: 1) == .seconds(1))
        for failures in 1...20 {
            let delay = policy.delay(afterFailures: failures)
            #expect(delay >= .milliseconds(500) && delay <= .seconds(60))
        }
    }

    /// The payload crosses the suite's snake_case coders twice on its way; its keys and numbers must not change.
    @Test func payloadKeepsItsKeysAndNumbersThroughTheSuitesCoders() throws {
        let payload: [String: JSONValue] = [
            "tenant_id": .string("a"), "camelCase": .bool(true), "big": .integer(Int64.max), "ratio": .number(0.1),
            "nested": .object(["inner_key": .array([.null, .integer(-3), .string("x")])]),
        ]
        let event = EventEnvelope(type: "billing.x", source: "billing", payload: payload)
        let decoded = try JSONCoding.decoder.decode(EventEnvelope.self, from: JSONCoding.encoder.encode(event))
        #expect(decoded.payload == payload)

        struct Typed: Codable, Equatable {
            var tenantId: UUID
            var amountCents: Int64
        }
        let typed = Typed(tenantId: UUID(), amountCents: 9_007_199_254_740_993)
        let envelope = try EventEnvelope(type: "billing.x", source: "billing", payload: typed)
        #expect(Set(envelope.payload.keys) == ["tenant_id", "amount_cents"])
        #expect(try envelope.decodePayload(as: Typed.self) == typed)
        #expect(throws: DecodingError.self) { try EventEnvelope(type: "billing.x", source: "billing", payload: [1, 2]) }
    }
}
