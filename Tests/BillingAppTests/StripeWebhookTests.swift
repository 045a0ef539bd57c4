import Crypto
import Foundation
import HTTPTypes
import LocalPostgres
import ServiceCore
import TestSupport
import Testing

@testable import BillingApp

/// `Stripe-Signature` verification and event parsing, checked against Stripe's documented
/// algorithm and against Stripe's official Python library (`stripe` on PyPI).
@Suite("Stripe webhooks")
struct StripeWebhookTests {
    static let secret = "whsec_test_5kQ2mX9pL"
    static let body = #"{"id":"evt_1","object":"event","type":"invoice.paid","created":1795986000,"data":{"object":{"id":"in_1"}}}"#

    /// Computed from the documented algorithm with swift-crypto directly, not with the code under test.
    static func documentedSignature(_ payload: String, timestamp: Int64, secret: String = secret) -> String {
        let code = HMAC<SHA256>.authenticationCode(for: Data("\(timestamp).\(payload)".utf8), using: SymmetricKey(data: Data(secret.utf8)))
        return code.map { String(format: "%02x", $0) }.joined()
    }

    static func verifier(now seconds: Int64, tolerance: Int = 300) -> StripeSignature {
        StripeSignature(secret: secret, tolerance: tolerance, now: { Date(timeIntervalSince1970: TimeInterval(seconds)) })
    }

    @Test func aFixedVectorFromStripesLibraryIsAccepted() throws {
        // stripe.WebhookSignature._compute_signature("1.{}", "whsec_x") from stripe 16.1.0.
        let header = "t=1,v1=36ee2f7498f0c1777d1312b2a7361947fe5ad31223be30d0c62421f4ca753401"
        let verifier = StripeSignature(secret: "whsec_x", now: { Date(timeIntervalSince1970: 1) })
        #expect(try verifier.verify(payload: Data("{}".utf8), header: header) == Date(timeIntervalSince1970: 1))
        #expect(throws: StripeSignature.Failure.noMatchingSignature) { try verifier.verify(payload: Data("{} ".utf8), header: header) }
    }

    @Test func documentedSignaturesAreAcceptedAndEverythingElseRefused() throws {
        let t: Int64 = 1_795_986_000
        let good = Self.documentedSignature(Self.body, timestamp: t)
        let verifier = Self.verifier(now: t + 10)
        let payload = Data(Self.body.utf8)
        #expect(try verifier.verify(payload: payload, header: "t=\(t),v1=\(good)") == Date(timeIntervalSince1970: TimeInterval(t)))
        // Any v1 may match (Stripe sends one per secret while a secret is rolled); v0 is ignored.
        let other = Self.documentedSignature(Self.body, timestamp: t, secret: "whsec_old")
        try verifier.verify(payload: payload, header: "t=\(t),v1=\(other),v1=\(good),v0=\(other)")
        try verifier.verify(payload: payload, header: "v1=\(good),t=\(t)")

        // A tampered body, another secret, or a signature moved to another timestamp.
        #expect(throws: StripeSignature.Failure.noMatchingSignature) {
            try verifier.verify(payload: Data(Self.body.replacingOccurrences(of: "in_1", with: "in_2").utf8), header: "t=\(t),v1=\(good)")
        }
        #expect(throws: StripeSignature.Failure.noMatchingSignature) { try verifier.verify(payload: payload, header: "t=\(t),v1=\(other)") }
        #expect(throws: StripeSignature.Failure.noMatchingSignature) { try verifier.verify(payload: payload, header: "t=\(t + 1),v1=\(good)") }
        #expect(throws: StripeSignature.Failure.noMatchingSignature) { try verifier.verify(payload: payload, header: "t=\(t),v1=\(good.uppercased().dropLast())") }

        // Outside the tolerance, either way; inside it at the edge.
        #expect(throws: StripeSignature.Failure.timestampOutsideTolerance) { try Self.verifier(now: t + 301).verify(payload: payload, header: "t=\(t),v1=\(good)") }
        #expect(throws: StripeSignature.Failure.timestampOutsideTolerance) { try Self.verifier(now: t - 301).verify(payload: payload, header: "t=\(t),v1=\(good)") }
        try Self.verifier(now: t + 300).verify(payload: payload, header: "t=\(t),v1=\(good)")
        #expect(throws: StripeSignature.Failure.timestampOutsideTolerance) {
            try Self.verifier(now: t + 61, tolerance: 60).verify(payload: payload, header: "t=\(t),v1=\(good)")
        }

        // Missing and garbled headers.
        #expect(throws: StripeSignature.Failure.missingHeader) { try verifier.verify(payload: payload, header: nil) }
        #expect(throws: StripeSignature.Failure.missingHeader) { try verifier.verify(payload: payload, header: "") }
        #expect(throws: StripeSignature.Failure.malformedHeader) { try verifier.verify(payload: payload, header: "garbage") }
        #expect(throws: StripeSignature.Failure.malformedHeader) { try verifier.verify(payload: payload, header: "v1=\(good)") }
        #expect(throws: StripeSignature.Failure.malformedHeader) { try verifier.verify(payload: payload, header: "t=soon,v1=\(good)") }
        #expect(throws: StripeSignature.Failure.malformedHeader) { try verifier.verify(payload: payload, header: "t=\(t),t=\(t),v1=\(good)") }
        #expect(throws: StripeSignature.Failure.noV1Signature) { try verifier.verify(payload: payload, header: "t=\(t),v0=\(good)") }
        #expect(throws: StripeSignature.Failure.noMatchingSignature) { try verifier.verify(payload: payload, header: "t=\(t),v1=zz") }
    }

    @Test func aFailureIsA400ForTheWebhookEndpoint() {
        let error = StripeSignature.Failure.timestampOutsideTolerance.appError
        #expect(error.status == .badRequest && error.code == "INVALID_WEBHOOK_SIGNATURE")
    }

    @Test func ourHeaderIsWhatTheDocumentedAlgorithmGives() {
        let header = StripeSignature.header(payload: Data(Self.body.utf8), secret: Self.secret, timestamp: 42)
        #expect(header == "t=42,v1=\(Self.documentedSignature(Self.body, timestamp: 42))")
    }

    // MARK: - Stripe's own library

    @Test func signaturesMadeByStripesPythonLibraryAreAcceptedAndTamperingIsNot() async throws {
        let now = Int64(Date().timeIntervalSince1970)
        let payload = #"{"id": "evt_1QpY", "object": "event", "type": "checkout.session.completed", "created": \#(now), "data": {"object": {"id": "cs_test_1", "amount_total": 49990, "currency": "clp"}}}"#
        let header = try await StripePython.run("sign", payload: payload, now)
        #expect(header.hasPrefix("t=\(now),v1="))
        let verifier = Self.verifier(now: now)
        try verifier.verify(payload: Data(payload.utf8), header: header)
        #expect(throws: StripeSignature.Failure.noMatchingSignature) {
            try verifier.verify(payload: Data(payload.replacingOccurrences(of: "49990", with: "1").utf8), header: header)
        }
        #expect(throws: StripeSignature.Failure.timestampOutsideTolerance) { try Self.verifier(now: now + 301).verify(payload: Data(payload.utf8), header: header) }

        // And the other way: Stripe's `Webhook.construct_event` accepts what billing would sign, refuses it tampered.
        let ours = StripeSignature.header(payload: Data(payload.utf8), secret: Self.secret, timestamp: now)
        #expect(try await StripePython.run("verify", payload: payload, now, header: ours) == "ok evt_1QpY")
        #expect(try await StripePython.run("verify", payload: payload + " ", now, header: ours).hasPrefix("rejected"))
    }

    // MARK: - Events

    static func event(_ type: String, _ object: String, created: Int64 = 1_795_986_000) -> Data {
        Data(#"{"id": "evt_9", "object": "event", "api_version": "2025-03-31.basil", "type": "\#(type)", "created": \#(created), "livemode": false, "data": {"object": \#(object)}}"#.utf8)
    }

    @Test func checkoutCompletedCarriesTenantAndPlan() throws {
        let reference = MercadoPagoClientTests.reference
        let event = try StripeWebhookEvent.parse(Self.event("checkout.session.completed", """
            {"id": "cs_test_1", "object": "checkout.session", "client_reference_id": "\(reference.description)", "mode": "subscription",
             "payment_status": "paid", "customer": "cus_1", "subscription": "sub_1", "payment_intent": null, "amount_total": 49990, "currency": "clp"}
            """))
        #expect(event.id == "evt_9" && event.created == Date(timeIntervalSince1970: 1_795_986_000) && !event.livemode)
        #expect(event.kind == .checkoutCompleted(.init(
            sessionID: "cs_test_1", owner: .init(tenantID: reference.tenantID, plan: "pro", paymentID: reference.paymentID), mode: "subscription",
            paymentStatus: "paid", customerID: "cus_1", subscriptionID: "sub_1", paymentIntentID: nil, amountTotal: Money(minorUnits: 49_990, currency: "CLP")
        )))
    }

    @Test func invoicesOfBothAPIShapesAreRead() throws {
        let tenant = UUID()
        let metadata = #"{"tenant_id": "\#(tenant.uuidString.lowercased())", "plan": "starter"}"#
        // Since 2025-03-31: subscription and its metadata under parent.subscription_details.
        let paid = try StripeWebhookEvent.parse(Self.event("invoice.paid", """
            {"id": "in_1", "object": "invoice", "customer": "cus_1", "amount_paid": 19990, "amount_due": 19990, "currency": "clp", "attempt_count": 1,
             "parent": {"type": "subscription_details", "subscription_details": {"subscription": "sub_1", "metadata": \(metadata)}},
             "lines": {"object": "list", "data": [{"period": {"start": 1795986000, "end": 1798664400}}]}}
            """))
        #expect(paid.kind == .invoicePaid(.init(
            invoiceID: "in_1", owner: .init(tenantID: tenant, plan: "starter", paymentID: nil), customerID: "cus_1", subscriptionID: "sub_1",
            amount: Money(minorUnits: 19_990, currency: "CLP"), periodEnd: Date(timeIntervalSince1970: 1_798_664_400), attemptCount: 1,
            periodStart: Date(timeIntervalSince1970: 1_795_986_000)
        )))
        // Before it: invoice.subscription and subscription_details.metadata.
        let failed = try StripeWebhookEvent.parse(Self.event("invoice.payment_failed", """
            {"id": "in_2", "customer": {"id": "cus_1", "object": "customer"}, "subscription": "sub_1", "amount_paid": 0, "amount_due": 19990,
             "currency": "clp", "attempt_count": 2, "subscription_details": {"metadata": \(metadata)}, "period_end": 1795986000}
            """))
        guard case .invoicePaymentFailed(let invoice) = failed.kind else { Issue.record("\(failed)"); return }
        #expect(invoice.subscriptionID == "sub_1" && invoice.customerID == "cus_1")
        #expect(invoice.amount == Money(minorUnits: 19_990, currency: "CLP"))
        #expect(invoice.owner?.tenantID == tenant)
        #expect(invoice.attemptCount == 2)
    }

    @Test func subscriptionChangesAndDeletion() throws {
        let tenant = UUID()
        let object = """
            {"id": "sub_1", "object": "subscription", "customer": "cus_1", "status": "past_due", "cancel_at_period_end": true,
             "metadata": {"tenant_id": "\(tenant.uuidString)", "plan": "pro"},
             "items": {"data": [{"price": {"id": "price_1Pro"}, "current_period_start": 1795986000, "current_period_end": 1798664400}]}}
            """
        let updated = try StripeWebhookEvent.parse(Self.event("customer.subscription.updated", object))
        let expected = StripeWebhookEvent.Subscription(
            subscriptionID: "sub_1", owner: .init(tenantID: tenant, plan: "pro", paymentID: nil), customerID: "cus_1", status: "past_due",
            currentPeriodStart: Date(timeIntervalSince1970: 1_795_986_000), currentPeriodEnd: Date(timeIntervalSince1970: 1_798_664_400),
            cancelAtPeriodEnd: true, priceID: "price_1Pro", price: .init(id: "price_1Pro", lookupKey: nil, plan: nil)
        )
        #expect(updated.kind == .subscriptionUpdated(expected))
        let deleted = try StripeWebhookEvent.parse(Self.event("customer.subscription.deleted", object.replacingOccurrences(of: "past_due", with: "canceled"), created: 1_795_986_100))
        guard case .subscriptionDeleted(let subscription) = deleted.kind else { Issue.record("\(deleted)"); return }
        #expect(subscription.status == "canceled")
        #expect(deleted.created > updated.created)
        // The period on the subscription itself (API versions before 2025-03-31).
        let old = try StripeWebhookEvent.parse(Self.event("customer.subscription.updated", #"{"id": "sub_2", "status": "active", "current_period_end": 1798664400}"#))
        guard case .subscriptionUpdated(let older) = old.kind else { Issue.record("\(old)"); return }
        #expect(older.currentPeriodEnd == Date(timeIntervalSince1970: 1_798_664_400) && older.owner == nil && !older.cancelAtPeriodEnd)
    }

    @Test func unknownTypesAreIgnoredAndMalformedBodiesRefused() throws {
        let unknown = try StripeWebhookEvent.parse(Self.event("charge.refunded", #"{"id": "ch_1", "whatever": [1, 2]}"#))
        #expect(unknown.type == "charge.refunded" && unknown.kind == nil)
        for body in ["", "[]", "{", #"{"id": "evt_1"}"#, #"{"id": "evt_1", "type": "invoice.paid", "created": "yesterday", "data": {"object": {"id": "in_1"}}}"#] {
            #expect(throws: StripeWebhookEvent.Malformed.self) { try StripeWebhookEvent.parse(Data(body.utf8)) }
        }
        #expect(throws: StripeWebhookEvent.Malformed.self) { try StripeWebhookEvent.parse(Self.event("invoice.paid", #"{"object": "invoice"}"#)) }
        #expect(throws: StripeWebhookEvent.Malformed.self) { try StripeWebhookEvent.parse(Self.event("customer.subscription.updated", #"{"id": "sub_1"}"#)) }
        #expect(throws: StripeWebhookEvent.Malformed.self) { try StripeWebhookEvent.parse(Self.event("invoice.paid", "[]")) }
    }
}

/// Stripe's official Python library (`stripe`, pinned in `Tools/stripe/requirements.txt`) in a
/// virtual environment under `.build/stripe-venv`, made by `Tools/test.sh` or, the first time a
/// test needs it, by the tests themselves (pip installs offline from the machine's mirror).
enum StripePython {
    private static let script = """
        import sys, stripe
        mode, secret, path, timestamp = sys.argv[1:5]
        payload = open(path, "rb").read().decode("utf-8")
        if mode == "sign":
            print(stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp=int(timestamp)))
        else:
            try:
                event = stripe.Webhook.construct_event(payload, sys.argv[5], secret)
                print("ok", event["id"])
            except stripe.SignatureVerificationError as error:
                print("rejected", error)
        """

    /// Signs (`sign`) or verifies (`verify`, with `header`) `payload` with `StripeWebhookTests.secret`; the library's one line of output.
    static func run(_ mode: String, payload: String, _ timestamp: Int64, header: String? = nil) async throws -> String {
        let python = try await interpreter.value
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("stripe-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Data(payload.utf8).write(to: URL(fileURLWithPath: "\(directory)/payload"))
        let output = "\(directory)/out"
        var arguments = [python, "-c", script, mode, StripeWebhookTests.secret, "\(directory)/payload", String(timestamp)]
        if let header { arguments.append(header) }
        let status = ChildProcess.wait(try ChildProcess.spawn(arguments, outputPath: output))
        let text = (try? String(contentsOfFile: output, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        guard status == 0 else { throw FixtureError(description: "python with stripe (\(mode)) exited \(status): \(text)") }
        return text
    }

    private static let interpreter = Task<String, any Error> {
        try PythonEnvironment.interpreter(venv: ".build/stripe-venv", requirements: "Tools/stripe/requirements.txt")
    }
}
