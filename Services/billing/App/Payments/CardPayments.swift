import Crypto
import Foundation
import HTTPTypes
import Logging
import PostgresNIO
import ServiceCore

/// `POST /api/payments/process-payment`'s answer (seed 000's `DirectPaymentResponse`).
struct DirectPaymentAnswer: Codable, Sendable, Equatable {
    struct ThreeDS: Codable, Sendable, Equatable {
        var externalResourceUrl: String
        var creq: String
    }

    var paymentId: String
    var status: String
    var statusDetail: String?
    var statusMessage: String
    var threeDsInfo: ThreeDS?
    /// Stripe: what the payer's browser must do before the payment can be approved.
    var nextAction: NextAction?

    struct NextAction: Codable, Sendable, Equatable {
        var type: String
        var redirectUrl: String?
        var clientSecret: String?
    }
}

/// What a card payment asks for, validated.
struct CardPaymentOrder: Sendable {
    var plan: PlanDefinition
    var card: CardPayment
    var email: String
    /// The client's `Idempotency-Key` (a fresh one when it sent none).
    var idempotencyKey: String
}

/// Card payments (Checkout Bricks) and hosted checkouts (Checkout Pro), at most one charge per
/// idempotency key and one in flight per tenant:
///
/// 1. under the tenant's lock, the key is looked up: a finished request's answer is replayed, one in
///    flight answers 409, a different request under the same key 422; another payment of the tenant
///    in flight answers 409; otherwise the payment is written `processing` with a lease;
/// 2. the provider is called with no transaction open, with an idempotency key derived from the
///    payment (so a retry after a timeout reaches the same charge, never a second one);
/// 3. its answer is applied (`ProviderPaymentApplier`) and stored for replays. A timeout or a 5xx
///    leaves the payment `pending` (never paid) for the webhook or the scheduler to settle.
struct CardPayments: Sendable {
    let database: Database
    let provider: any PaymentProvider
    let applier: ProviderPaymentApplier
    let clock: any BillingClock
    /// How long a provider call may hold a payment in `processing` before a retry may take it over.
    let lease: TimeInterval = 90

    private enum Start {
        case replay(String)
        case charge(PaymentRecord)
    }

    func process(_ order: CardPaymentOrder, tenantID: UUID, logger: Logger) async throws -> DirectPaymentAnswer {
        let fingerprint = Self.fingerprint(order)
        let now = clock.now()
        let start: Start = try await database.transaction(logger: logger) { connection in
            try await SubscriptionLedger.lockTenant(tenantID, on: connection, logger: logger)
            let rows = try await connection.query(
                "SELECT \(unescaped: PaymentRecord.columns) FROM payments WHERE tenant_id = \(tenantID) AND idempotency_key = \(order.idempotencyKey)",
                logger: logger
            ).collect()
            if var existing = try PaymentRecord.decode(rows).first {
                guard existing.requestFingerprint == fingerprint else {
                    throw AppError(.unprocessableContent, code: "IDEMPOTENCY_KEY_REUSED", detail: "This Idempotency-Key was used for a different payment request")
                }
                if let answer = existing.answer { return .replay(answer) }
                if existing.status == .processing, let until = existing.processingUntil, until > now {
                    throw AppError.conflict("A payment with this Idempotency-Key is still being processed; retry shortly", code: "PAYMENT_IN_FLIGHT")
                }
                guard existing.status.rank <= PaymentStatus.pending.rank else {
                    return .replay(String(decoding: try JSONCoding.encoder.encode(Self.answer(existing)), as: UTF8.self))
                }
                // An earlier attempt timed out or died: ask the provider again under the same key.
                existing.status = .processing
                existing.processingUntil = now.addingTimeInterval(lease)
                try await connection.query(
                    "UPDATE payments SET status = 'processing', processing_until = \(existing.processingUntil) WHERE id = \(existing.id)", logger: logger
                )
                return .charge(existing)
            }
            let busy = try await connection.query(
                "SELECT 1 FROM payments WHERE tenant_id = \(tenantID) AND status = 'processing' AND processing_until > \(now)", logger: logger
            ).collect()
            guard busy.isEmpty else {
                throw AppError.conflict("Another payment of this account is being processed; wait for its result", code: "PAYMENT_IN_PROGRESS")
            }
            let payment = PaymentRecord(
                id: UUID(), tenantID: tenantID, plan: order.plan.id, provider: provider.kind.rawValue, kind: "card", providerPaymentID: nil,
                status: .processing, statusDetail: nil, amount: order.plan.price, refundedMinorUnits: 0, paymentMethod: order.card.paymentMethodID,
                idempotencyKey: order.idempotencyKey, requestFingerprint: fingerprint, processingUntil: now.addingTimeInterval(lease), answer: nil,
                createdAt: now, approvedAt: nil
            )
            try await PaymentRecord.insert(payment, on: connection, logger: logger)
            return .charge(payment)
        }
        switch start {
        case .replay(let answer):
            return try JSONCoding.decoder.decode(DirectPaymentAnswer.self, from: Data(answer.utf8))
        case .charge(let payment):
            return try await charge(payment, order: order, logger: logger)
        }
    }

    private func charge(_ payment: PaymentRecord, order: CardPaymentOrder, logger: Logger) async throws -> DirectPaymentAnswer {
        let providerOrder = PaymentOrder(
            reference: payment.reference, amount: payment.amount, title: "\(order.plan.title) plan", payerEmail: order.email,
            idempotencyKey: Self.providerKey(payment.id, kind: "card")
        )
        let reported: ProviderPayment
        do {
            reported = try await provider.charge(providerOrder, card: order.card, logger: logger)
        } catch let error as PaymentProviderError {
            // Whether it charged is unknown (timeout, 5xx) or it did not (4xx): either way not paid.
            let status: PaymentStatus = if case .rejectedByProvider = error { .rejected } else { .pending }
            try await database.query(
                "UPDATE payments SET status = \(status.rawValue), processing_until = NULL, updated_at = now() WHERE id = \(payment.id) AND status = 'processing'",
                logger: logger
            )
            logger.warning("payment provider call failed", metadata: ["payment_id": "\(payment.id)", "error": "\(error)"])
            // The provider refusing the card itself (a bad or used token) is the payer's to fix, not an outage.
            if case .rejectedByProvider(let status, let message) = error, status < 500 {
                throw AppError.validation(["token": ["was refused by the payment provider: \(message.prefix(200))"]], detail: "The payment provider refused the card")
            }
            throw ProviderFailure.appError(error)
        }
        let now = clock.now()
        return try await database.transaction(logger: logger) { connection in
            _ = try await applier.apply(reported, cause: .payment, now: now, on: connection, logger: logger)
            guard let stored = try await PaymentRecord.locked(payment.id, tenantID: payment.tenantID, on: connection, logger: logger) else {
                throw AppError.internalError("payment vanished")
            }
            var answer = Self.answer(stored)
            answer.threeDsInfo = reported.threeDSInfo.map { DirectPaymentAnswer.ThreeDS(externalResourceUrl: $0.externalResourceURL, creq: $0.creq) }
            answer.nextAction = reported.nextAction.map {
                DirectPaymentAnswer.NextAction(type: $0.type, redirectUrl: $0.redirectURL, clientSecret: $0.clientSecret)
            }
            let json = String(decoding: try JSONCoding.encoder.encode(answer), as: UTF8.self)
            try await connection.query(
                "UPDATE payments SET answer = \(json)::jsonb, processing_until = NULL, status = CASE WHEN status = 'processing' THEN 'pending' ELSE status END WHERE id = \(payment.id)",
                logger: logger
            )
            return answer
        }
    }

    /// The idempotency key a payment's provider call carries: the same for every retry of that
    /// payment, and what the reconciliation finds a timed-out charge by.
    static func providerKey(_ paymentID: UUID, kind: String) -> String {
        "billing-\(kind == "card" ? "payment" : kind)-\(paymentID.uuidString.lowercased())"
    }

    static func answer(_ payment: PaymentRecord) -> DirectPaymentAnswer {
        let status: PaymentStatus = payment.status == .processing ? .pending : payment.status
        return DirectPaymentAnswer(
            paymentId: payment.id.uuidString.lowercased(), status: status.publicName, statusDetail: payment.statusDetail, statusMessage: status.message,
            threeDsInfo: nil
        )
    }

    /// What makes two requests "the same payment": never the token itself in clear.
    static func fingerprint(_ order: CardPaymentOrder) -> String {
        let text = [order.plan.id, order.card.token, order.card.paymentMethodID, String(order.card.installments), order.email].joined(separator: "\u{1F}")
        return SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// A Checkout Pro preference (or the provider's hosted page) for `plan`; the payment is written
    /// `pending` first, so the webhook that reports it finds it by its reference.
    func createCheckout(plan: PlanDefinition, tenantID: UUID, email: String, returnURL: String, logger: Logger) async throws -> (PaymentRecord, HostedCheckout) {
        let payment = PaymentRecord(
            id: UUID(), tenantID: tenantID, plan: plan.id, provider: provider.kind.rawValue, kind: "checkout", providerPaymentID: nil, status: .pending,
            statusDetail: nil, amount: plan.price, refundedMinorUnits: 0, paymentMethod: nil, idempotencyKey: nil, requestFingerprint: nil,
            processingUntil: nil, answer: nil, createdAt: clock.now(), approvedAt: nil
        )
        try await database.transaction(logger: logger) { connection in
            try await PaymentRecord.insert(payment, on: connection, logger: logger)
        }
        let order = PaymentOrder(
            reference: payment.reference, amount: plan.price, title: "\(plan.title) plan", payerEmail: email,
            idempotencyKey: Self.providerKey(payment.id, kind: "checkout")
        )
        do {
            let checkout = try await provider.createCheckout(order, returnURL: returnURL, logger: logger)
            try await database.query("UPDATE payments SET checkout_id = \(checkout.id) WHERE id = \(payment.id)", logger: logger)
            return (payment, checkout)
        } catch let error as PaymentProviderError {
            try await database.query("UPDATE payments SET status = 'cancelled', updated_at = now() WHERE id = \(payment.id)", logger: logger)
            throw ProviderFailure.appError(error)
        }
    }
}
