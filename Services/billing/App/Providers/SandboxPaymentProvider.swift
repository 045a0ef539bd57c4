import AsyncHTTPClient
import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import PostgresNIO
import ServiceCore

/// The offline provider (`PAYMENT_PROVIDER=sandbox`, the default): it keeps its own ledger in
/// billing's database (`sandbox_payments`) and answers like MercadoPago would, so the whole flow
/// (checkout → signed webhook → active subscription) runs with nothing else on the machine.
///
/// Card tokens decide the outcome: `tok_sandbox_approved`, `tok_sandbox_rejected`,
/// `tok_sandbox_pending` (approved `pendingApproval` later), and for fault drills
/// `tok_sandbox_timeout` (charges, then answers nothing in time) and `tok_sandbox_unavailable`
/// (a 500, nothing charged). Any other token is refused as MercadoPago refuses a bad token (400).
/// After each change it notifies billing's own `POST /api/payments/webhook` in MercadoPago's
/// format, signed with `signature` through the same code that verifies real notifications.
struct SandboxPaymentProvider: PaymentProvider {
    enum Token {
        static let approved = "tok_sandbox_approved"
        static let rejected = "tok_sandbox_rejected"
        static let pending = "tok_sandbox_pending"
        static let timeout = "tok_sandbox_timeout"
        static let unavailable = "tok_sandbox_unavailable"
    }

    let database: Database
    let clock: any BillingClock
    /// How long a `tok_sandbox_pending` payment stays pending.
    let pendingApproval: TimeInterval
    /// Where and how it notifies billing; nil sends no notifications (router tests send their own).
    let notifier: SandboxWebhookNotifier?

    var kind: PaymentProviderKind { .sandbox }
    var publicKey: String? { nil }
    var isTestMode: Bool { true }

    func createCheckout(_ order: PaymentOrder, returnURL: String, logger: Logger) async throws -> HostedCheckout {
        // The sandbox has no hosted page: the id is real (its payment appears when paid through
        // process-payment); the URLs only name it.
        let id = "sandbox-pref-\(order.reference.paymentID.uuidString.lowercased())"
        return HostedCheckout(id: id, url: "https://sandbox.invalid/checkout/\(id)", sandboxURL: "https://sandbox.invalid/checkout/\(id)")
    }

    func charge(_ order: PaymentOrder, card: CardPayment, logger: Logger) async throws -> ProviderPayment {
        let now = clock.now()
        let status: ProviderPayment.Status
        let detail: String
        var approveAt: Date?
        switch card.token {
        case Token.approved, Token.timeout: (status, detail) = (.approved, "accredited")
        case Token.rejected: (status, detail) = (.rejected, "cc_rejected_other_reason")
        case Token.pending:
            (status, detail) = (.pending, "pending_contingency")
            approveAt = now.addingTimeInterval(pendingApproval)
        case Token.unavailable: throw PaymentProviderError.unavailable("sandbox: simulated internal server error")
        default: throw PaymentProviderError.rejectedByProvider(status: 400, message: "Invalid card token")
        }
        guard order.amount.minorUnits > 0 else { throw PaymentProviderError.rejectedByProvider(status: 400, message: "Invalid transaction_amount") }
        let id = String(Int64.random(in: 10_000_000_000..<100_000_000_000))
        // A retried key answers the payment it made the first time, as a real provider does.
        try await database.query(
            """
            INSERT INTO sandbox_payments (id, idempotency_key, status, status_detail, amount, currency, reference, payment_method, approve_at, created_at, approved_at)
            VALUES (\(id), \(order.idempotencyKey), \(status.rawValue), \(detail), \(order.amount.minorUnits), \(order.amount.currency),
                    \(order.reference.description), \(card.paymentMethodID), \(approveAt), \(now), \(status == .approved ? now : nil))
            ON CONFLICT (idempotency_key) DO NOTHING
            """,
            logger: logger
        )
        guard let payment = try await stored(where: "idempotency_key", order.idempotencyKey, logger: logger) else {
            throw PaymentProviderError.unavailable("sandbox: payment vanished")
        }
        notifier?.notify(paymentID: payment.id, after: 0.2, logger: logger)
        if payment.status == .pending { notifier?.notify(paymentID: payment.id, after: pendingApproval + 0.2, logger: logger) }
        if card.token == Token.timeout { throw PaymentProviderError.timedOut }
        return payment
    }

    func payment(id: String, logger: Logger) async throws -> ProviderPayment {
        // A pending payment whose time has come is approved when next read, as if the bank answered.
        try await database.query(
            """
            UPDATE sandbox_payments SET status = 'approved', status_detail = 'accredited', approved_at = approve_at
            WHERE id = \(id) AND status = 'pending' AND approve_at <= \(clock.now())
            """,
            logger: logger
        )
        guard let payment = try await stored(where: "id", id, logger: logger) else {
            throw PaymentProviderError.rejectedByProvider(status: 404, message: "Payment not found")
        }
        return payment
    }

    /// The sandbox's own ledger keeps each charge under its idempotency key.
    func findPayment(reference: PaymentReference, idempotencyKey: String, logger: Logger) async throws -> ProviderPayment? {
        try await stored(where: "idempotency_key", idempotencyKey, logger: logger).flatMap { $0.reference == reference.description ? $0 : nil }
    }

    func refund(paymentID: String, amount: Money?, idempotencyKey: String, logger: Logger) async throws -> ProviderRefund {
        let outcome: (String, Int64)? = try await database.transaction(logger: logger) { connection in
            let existing = try await connection.query(
                "SELECT id, amount FROM sandbox_refunds WHERE idempotency_key = \(idempotencyKey)", logger: logger
            ).collect()
            if let row = existing.first { return try row.decode((String, Int64).self) }
            let rows = try await connection.query(
                "SELECT amount, refunded_amount, status FROM sandbox_payments WHERE id = \(paymentID) FOR UPDATE", logger: logger
            ).collect()
            guard let row = rows.first else { return nil }
            let (paid, refunded, status) = try row.decode((Int64, Int64, String).self)
            guard status == "approved" else { return nil }
            let take = amount?.minorUnits ?? (paid - refunded)
            guard take > 0, refunded + take <= paid else { return nil }
            let id = String(Int64.random(in: 10_000_000_000..<100_000_000_000))
            try await connection.query(
                "INSERT INTO sandbox_refunds (idempotency_key, id, payment_id, amount) VALUES (\(idempotencyKey), \(id), \(paymentID), \(take))",
                logger: logger
            )
            try await connection.query(
                """
                UPDATE sandbox_payments SET refunded_amount = refunded_amount + \(take),
                    status = CASE WHEN refunded_amount + \(take) = amount THEN 'refunded' ELSE status END
                WHERE id = \(paymentID)
                """,
                logger: logger
            )
            return (id, take)
        }
        guard let (id, take) = outcome else {
            throw PaymentProviderError.rejectedByProvider(status: 400, message: "The payment cannot be refunded by that amount")
        }
        let currency = try await stored(where: "id", paymentID, logger: logger)?.amount.currency ?? "CLP"
        notifier?.notify(paymentID: paymentID, after: 0.2, logger: logger)
        return ProviderRefund(id: id, amount: Money(minorUnits: take, currency: currency), status: "approved")
    }

    func paymentMethods(logger: Logger) async throws -> [PaymentMethod] {
        Self.methods
    }

    func cardIssuers(paymentMethodID: String, logger: Logger) async throws -> [CardIssuer] {
        guard Self.methods.contains(where: { $0.id == paymentMethodID && $0.paymentTypeID != "debit_card" }) || paymentMethodID == "redcompra" else {
            throw PaymentProviderError.rejectedByProvider(status: 404, message: "Unknown payment method")
        }
        return [
            CardIssuer(id: 1, name: "Banco Sandbox", thumbnail: "", secureThumbnail: ""),
            CardIssuer(id: 2, name: "Banco de Pruebas", thumbnail: "", secureThumbnail: ""),
        ]
    }

    static let methods: [PaymentMethod] = [
        PaymentMethod(id: "visa", name: "Visa", paymentTypeID: "credit_card", thumbnail: "", secureThumbnail: "", minAllowedAmount: 50, maxAllowedAmount: 10_000_000),
        PaymentMethod(id: "master", name: "Mastercard", paymentTypeID: "credit_card", thumbnail: "", secureThumbnail: "", minAllowedAmount: 50, maxAllowedAmount: 10_000_000),
        PaymentMethod(id: "redcompra", name: "Redcompra", paymentTypeID: "debit_card", thumbnail: "", secureThumbnail: "", minAllowedAmount: 50, maxAllowedAmount: 10_000_000),
    ]

    private func stored(where column: String, _ value: String, logger: Logger) async throws -> ProviderPayment? {
        let rows = try await database.query(
            """
            SELECT id, status, status_detail, amount, currency, refunded_amount, reference, payment_method, created_at, approved_at
            FROM sandbox_payments WHERE \(unescaped: column == "id" ? "id" : "idempotency_key") = \(value)
            """,
            logger: logger
        )
        for (id, status, detail, amount, currency, refunded, reference, method, created, approved) in try rows.decode(
            (String, String, String?, Int64, String, Int64, String, String?, Date, Date?).self
        ) {
            return ProviderPayment(
                id: id, status: ProviderPayment.Status(rawValue: status) ?? .pending, statusDetail: detail,
                amount: Money(minorUnits: amount, currency: currency), refundedAmount: refunded > 0 ? Money(minorUnits: refunded, currency: currency) : nil,
                paymentMethodID: method, reference: reference, createdAt: created, approvedAt: approved, threeDSInfo: nil
            )
        }
        return nil
    }
}

/// Sends the sandbox's notifications to billing's webhook in MercadoPago's format: `POST
/// <url>?data.id=<id>&type=payment`, the `x-signature` and `x-request-id` headers, and the body
/// MercadoPago sends (`action`, `type`, `data.id`, …).
struct SandboxWebhookNotifier: Sendable {
    let url: String
    let signature: MercadoPagoWebhookSignature
    let http: HTTPClient

    /// Fire and forget, `delay` seconds from now: a lost notification is what the scheduler's
    /// reconciliation is for, exactly as with a real provider.
    func notify(paymentID: String, after delay: TimeInterval, logger: Logger) {
        let url = url
        let signature = signature
        let http = http
        Task {
            try? await Task.sleep(for: .milliseconds(Int64(delay * 1_000)))
            let requestID = UUID().uuidString.lowercased()
            var request = HTTPClientRequest(url: "\(url)?data.id=\(paymentID)&type=payment")
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.headers.add(name: "x-request-id", value: requestID)
            request.headers.add(name: "x-signature", value: signature.header(dataID: paymentID, requestID: requestID, time: Date()))
            let body = #"{"action":"payment.updated","api_version":"v1","data":{"id":"\#(paymentID)"},"date_created":"\#(Date().ISO8601Format())","id":\#(Int64.random(in: 1..<Int64.max)),"live_mode":false,"type":"payment","user_id":"sandbox"}"#
            request.body = .bytes(ByteBuffer(string: body))
            do {
                let response = try await http.execute(request, timeout: .seconds(10))
                _ = try await response.body.collect(upTo: 64 * 1_024)
                if response.status.code >= 300 {
                    logger.warning("sandbox webhook refused", metadata: ["status": "\(response.status.code)", "payment": "\(paymentID)"])
                }
            } catch {
                logger.warning("sandbox webhook not delivered; the scheduler reconciles it", metadata: ["error": "\(error)", "payment": "\(paymentID)"])
            }
        }
    }
}

/// `PAYMENT_PROVIDER`: which provider takes new payments.
enum PaymentProviderFactory {
    static func make(_ config: BillingConfig, database: Database, http: HTTPClient, clock: any BillingClock) throws -> any PaymentProvider {
        switch config.paymentProvider {
        case .sandbox:
            let notifier = config.sandbox.webhookURL.map {
                SandboxWebhookNotifier(url: $0, signature: MercadoPagoWebhookSignature(secret: config.sandbox.webhookSecret, tolerance: 300), http: http)
            }
            return SandboxPaymentProvider(database: database, clock: clock, pendingApproval: config.sandbox.pendingApprovalSeconds, notifier: notifier)
        case .mercadopago:
            guard let settings = config.mercadoPago else {
                throw ConfigurationError(variable: "MERCADOPAGO_ACCESS_TOKEN", problem: "is required with PAYMENT_PROVIDER=mercadopago")
            }
            return MercadoPagoClient(config: settings, http: http)
        case .stripe:
            guard let client = config.stripe.flatMap({ StripeClient(config: $0, http: http) }) else {
                throw ConfigurationError(variable: "STRIPE_SECRET_KEY", problem: "is required with PAYMENT_PROVIDER=stripe")
            }
            return client
        }
    }
}
