import Foundation
import HTTPTypes
import Logging
import PostgresNIO
import ServiceCore

/// A payment's state in billing's own ledger (`payments.status`). `processing` is billing's: a
/// provider call is in flight; the rest are the provider's, normalised.
enum PaymentStatus: String, Sendable, Codable {
    case processing, pending, approved, rejected, cancelled, refunded
    case chargedBack = "charged_back"

    init(_ status: ProviderPayment.Status) {
        switch status {
        case .approved: self = .approved
        case .pending: self = .pending
        case .rejected: self = .rejected
        case .cancelled: self = .cancelled
        case .refunded: self = .refunded
        case .chargedBack: self = .chargedBack
        }
    }

    /// How far along a payment is. A notification reporting a lower rank than the ledger holds is
    /// older news (webhooks arrive in any order) and never moves a payment back.
    var rank: Int {
        switch self {
        case .processing: 0
        case .pending: 1
        case .approved, .rejected, .cancelled: 2
        case .refunded, .chargedBack: 3
        }
    }

    /// As seed 000 names it to the payer (`in_process` while billing waits for the provider).
    var publicName: String { self == .processing ? "in_process" : rawValue }

    var message: String {
        switch self {
        case .processing: "Your payment is being processed"
        case .pending: "Your payment is pending confirmation"
        case .approved: "Payment approved; your subscription is active"
        case .rejected: "Your payment was rejected; try another card"
        case .cancelled: "The payment was cancelled"
        case .refunded: "The payment was refunded"
        case .chargedBack: "The payment was charged back"
        }
    }
}

/// One row of `payments`.
struct PaymentRecord: Sendable {
    var id: UUID
    var tenantID: UUID
    var plan: String
    var provider: String
    var kind: String
    var providerPaymentID: String?
    var status: PaymentStatus
    var statusDetail: String?
    var amount: Money
    var refundedMinorUnits: Int64
    var paymentMethod: String?
    var idempotencyKey: String?
    var requestFingerprint: String?
    var processingUntil: Date?
    /// The answer given to the request that made it, JSON, replayed to a retry with its key.
    var answer: String?
    var createdAt: Date
    var approvedAt: Date?

    var reference: PaymentReference { PaymentReference(tenantID: tenantID, plan: plan, paymentID: id) }

    static let columns = """
        id, tenant_id, plan, provider, kind, provider_payment_id, status, status_detail, amount, currency, refunded_amount,
        payment_method, idempotency_key, request_fingerprint, processing_until, answer::text, created_at, approved_at
        """

    static func decode(_ rows: some Sequence<PostgresRow>) throws -> [PaymentRecord] {
        try rows.map { row in
            let columns = try row.decode(
                (UUID, UUID, String, String, String, String?, String, String?, Int64, String, Int64, String?, String?, String?, Date?, String?, Date, Date?).self
            )
            guard let status = PaymentStatus(rawValue: columns.6) else { throw AppError.internalError("unknown payment status \(columns.6)") }
            return PaymentRecord(
                id: columns.0, tenantID: columns.1, plan: columns.2, provider: columns.3, kind: columns.4, providerPaymentID: columns.5,
                status: status, statusDetail: columns.7, amount: Money(minorUnits: columns.8, currency: columns.9), refundedMinorUnits: columns.10,
                paymentMethod: columns.11, idempotencyKey: columns.12, requestFingerprint: columns.13, processingUntil: columns.14,
                answer: columns.15, createdAt: columns.16, approvedAt: columns.17
            )
        }
    }

    /// Inserts a new payment.
    static func insert(_ payment: PaymentRecord, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.query(
            """
            INSERT INTO payments (
                id, tenant_id, plan, provider, kind, provider_payment_id, status, status_detail, amount, currency, payment_method,
                idempotency_key, request_fingerprint, processing_until, created_at, approved_at
            ) VALUES (
                \(payment.id), \(payment.tenantID), \(payment.plan), \(payment.provider), \(payment.kind), \(payment.providerPaymentID),
                \(payment.status.rawValue), \(payment.statusDetail), \(payment.amount.minorUnits), \(payment.amount.currency),
                \(payment.paymentMethod), \(payment.idempotencyKey), \(payment.requestFingerprint), \(payment.processingUntil),
                \(payment.createdAt), \(payment.approvedAt)
            )
            """,
            logger: logger
        )
    }

    /// One of a tenant's payments, locked for update; nil for an unknown id or another tenant's.
    static func locked(_ id: UUID, tenantID: UUID, on connection: PostgresConnection, logger: Logger) async throws -> PaymentRecord? {
        let rows = try await connection.query(
            "SELECT \(unescaped: columns) FROM payments WHERE id = \(id) AND tenant_id = \(tenantID) FOR UPDATE", logger: logger
        ).collect()
        return try decode(rows).first
    }
}

/// Provider failures as answers: the provider's 5xx or no connection is 502, no answer in time is
/// 504, both `{detail}`; nothing is recorded as paid by either.
enum ProviderFailure {
    static func appError(_ error: PaymentProviderError) -> AppError {
        switch error {
        case .timedOut: AppError(.gatewayTimeout, code: "PAYMENT_PROVIDER_TIMEOUT", detail: "The payment provider did not answer in time; the payment is kept pending and checked again later")
        case .unavailable(let message): AppError(.badGateway, code: "PAYMENT_PROVIDER_UNAVAILABLE", detail: "The payment provider failed: \(message.prefix(200))")
        case .rejectedByProvider(_, let message): AppError(.badGateway, code: "PAYMENT_PROVIDER_REJECTED", detail: "The payment provider refused the request: \(message.prefix(200))")
        case .unsupported(let what): AppError(.notImplemented, code: "PAYMENT_PROVIDER_UNSUPPORTED", detail: "The payment provider does not support \(what)")
        }
    }
}
