import Foundation
import Testing

@testable import BillingApp

/// The lifecycle as a pure function, and MercadoPago's signature, without a database.
@Suite("billing state machine and signatures")
struct SubscriptionStateMachineTests {
    typealias S = SubscriptionStatus

    @Test(arguments: [
        (S.trialing, SubscriptionEvent.paymentApproved, S.active),
        (.incomplete, .paymentApproved, .active),
        (.pastDue, .paymentApproved, .active),
        (.canceled, .paymentApproved, .active),
        (.active, .paymentApproved, .active),
        (.trialing, .paymentNotApproved, .incomplete),
        (.incomplete, .paymentNotApproved, .incomplete),
        (.trialing, .trialExpired, .trialing),
        (.active, .periodEndedUnpaid, .pastDue),
        (.active, .periodEndedCanceled, .canceled),
        (.pastDue, .graceElapsed, .canceled),
        (.trialing, .cancelRequested, .canceled),
        (.incomplete, .cancelRequested, .canceled),
        (.active, .cancelRequested, .active),
        (.pastDue, .cancelRequested, .pastDue),
        (.active, .planChangeScheduled, .active),
        (.active, .scheduledPlanApplied, .active),
    ])
    func allowed(from: S, event: SubscriptionEvent, to: S) {
        #expect(SubscriptionStateMachine.next(from: from, on: event) == to)
    }

    @Test(arguments: [
        (S.active, SubscriptionEvent.paymentNotApproved),
        (.pastDue, .paymentNotApproved),
        (.canceled, .paymentNotApproved),
        (.active, .trialExpired),
        (.trialing, .periodEndedUnpaid),
        (.pastDue, .periodEndedUnpaid),
        (.canceled, .periodEndedUnpaid),
        (.active, .graceElapsed),
        (.trialing, .graceElapsed),
        (.canceled, .cancelRequested),
        (.trialing, .planChangeScheduled),
        (.pastDue, .planChangeScheduled),
        (.canceled, .graceElapsed),
        (.incomplete, .periodEndedCanceled),
    ])
    func refused(from: S, event: SubscriptionEvent) {
        #expect(SubscriptionStateMachine.next(from: from, on: event) == nil)
    }

    @Test func everyStateCanBeReachedAndCanceledIsLeftOnlyByPaying() {
        for event in SubscriptionEvent.allCases where event != .paymentApproved {
            #expect(SubscriptionStateMachine.next(from: .canceled, on: event) == nil, "\(event)")
        }
        #expect(!SubscriptionStateMachine.grantsAccess(.canceled))
        #expect(!SubscriptionStateMachine.grantsAccess(.incomplete))
        #expect(SubscriptionStateMachine.grantsAccess(.pastDue))
    }

    @Test func renewalExtendsFromThePeriodEndAndAnotherPlanStartsNow() {
        let now = Date(timeIntervalSince1970: 1_767_225_600)  // 2026-01-01T00:00:00Z
        let tenant = UUID()
        var active = SubscriptionLedger.activated(nil, tenantID: tenant, plan: "pro", now: now)
        #expect(active.currentPeriodStart == now)
        #expect(active.currentPeriodEnd == Date(timeIntervalSince1970: 1_769_904_000))  // 2026-02-01
        active.cancelAtPeriodEnd = true
        let renewed = SubscriptionLedger.activated(active, tenantID: tenant, plan: "pro", now: now.addingTimeInterval(86_400))
        #expect(renewed.currentPeriodStart == now)
        #expect(renewed.currentPeriodEnd == Date(timeIntervalSince1970: 1_772_323_200))  // 2026-03-01
        #expect(!renewed.cancelAtPeriodEnd)
        let upgraded = SubscriptionLedger.activated(active, tenantID: tenant, plan: "enterprise", now: now.addingTimeInterval(86_400))
        #expect(upgraded.currentPeriodStart == now.addingTimeInterval(86_400))
        #expect(upgraded.plan == "enterprise")
    }

    // Expected values computed independently (Python's hmac module) from MercadoPago's documented manifest.
    @Test func signatureFollowsMercadoPagosManifest() throws {
        let signer = MercadoPagoWebhookSignature(secret: "test-secret", tolerance: 300)
        #expect(MercadoPagoWebhookSignature.manifest(dataID: "ABC123", requestID: "req-1", ts: "1700000000") == "id:abc123;request-id:req-1;ts:1700000000;")
        #expect(signer.hexSignature(dataID: "ABC123", requestID: "req-1", ts: "1700000000") == "6c496ca9e1d426b70be9a287cae12bf859b06b4f80446e66bc067d73da7b634b")
        let at = Date(timeIntervalSince1970: 1_700_000_010)
        try signer.verify(header: "ts=1700000000,v1=6c496ca9e1d426b70be9a287cae12bf859b06b4f80446e66bc067d73da7b634b", dataID: "abc123", requestID: "req-1", now: at)
        // Milliseconds, as some of MercadoPago's notifications carry.
        try signer.verify(
            header: "ts=1742505638683,v1=9183876b0461ce2d229394a1feef35d6e4c76e09358e7d4583705b7d14183a6a", dataID: "123456",
            requestID: "bb56a2f1-6aae-46ac-982e-9dcd3581d08e", now: Date(timeIntervalSince1970: 1_742_505_640)
        )
    }

    @Test func signatureRefusesWhatIsWrongOrOld() {
        let signer = MercadoPagoWebhookSignature(secret: "test-secret", tolerance: 300)
        let good = "ts=1700000000,v1=6c496ca9e1d426b70be9a287cae12bf859b06b4f80446e66bc067d73da7b634b"
        let at = Date(timeIntervalSince1970: 1_700_000_010)
        #expect(throws: MercadoPagoWebhookSignature.Failure.missing("x-signature")) { try signer.verify(header: nil, dataID: "abc123", requestID: "req-1", now: at) }
        #expect(throws: MercadoPagoWebhookSignature.Failure.missing("x-request-id")) { try signer.verify(header: good, dataID: "abc123", requestID: nil, now: at) }
        #expect(throws: MercadoPagoWebhookSignature.Failure.self) { try signer.verify(header: "v1=abc", dataID: "abc123", requestID: "req-1", now: at) }
        #expect(throws: MercadoPagoWebhookSignature.Failure.stale) {
            try signer.verify(header: good, dataID: "abc123", requestID: "req-1", now: at.addingTimeInterval(600))
        }
        #expect(throws: MercadoPagoWebhookSignature.Failure.mismatch) { try signer.verify(header: good, dataID: "abc124", requestID: "req-1", now: at) }
        #expect(throws: MercadoPagoWebhookSignature.Failure.mismatch) { try signer.verify(header: good, dataID: "abc123", requestID: "req-2", now: at) }
        let other = MercadoPagoWebhookSignature(secret: "other-secret", tolerance: 300)
        #expect(throws: MercadoPagoWebhookSignature.Failure.mismatch) { try other.verify(header: good, dataID: "abc123", requestID: "req-1", now: at) }
    }

    @Test func plansFromConfigurationAreCheckedAndDefaultToSeed000() throws {
        #expect(PlanCatalog.defaults.publicPlans.map(\.price.minorUnits) == [19_990, 49_990, 149_990])
        #expect(PlanCatalog.defaults.publicPlans.map(\.monthlyMessageQuota) == [10_000, 50_000, 1_000_000])
        let custom = try PlanCatalog(
            json: #"[{"id":"trial","title":"T","description":"d","price":0,"currency":"usd","monthly_message_quota":10,"is_public":false},{"id":"solo","title":"Solo","description":"d","price":900,"currency":"usd","monthly_message_quota":100,"is_public":true}]"#
        )
        #expect(custom.payable("solo")?.price == Money(minorUnits: 900, currency: "USD"))
        #expect(custom.payable("trial") == nil)
        #expect(throws: (any Error).self) { try PlanCatalog(json: #"[{"id":"solo","title":"S","description":"d","price":9.5,"currency":"USD","monthly_message_quota":1,"is_public":true}]"#) }
        #expect(throws: (any Error).self) { try PlanCatalog(json: #"[{"id":"solo","title":"S","description":"d","price":900,"currency":"USD","monthly_message_quota":1,"is_public":true}]"#) }
    }
}
