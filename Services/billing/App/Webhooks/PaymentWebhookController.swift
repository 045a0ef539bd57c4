import Foundation
import HTTPTypes
import Hummingbird
import Logging
import PostgresNIO
import ServiceCore

/// `POST /api/payments/webhook`: MercadoPago's notifications (and the sandbox's, in the same
/// format). The signature is checked first (bad, old or missing → 400, nothing read or changed);
/// then the payment is fetched from the provider, never taken from the body, and applied once per
/// (payment, reported state) through `processed_webhooks`.
struct PaymentWebhookController: Sendable {
    let database: Database
    let provider: any PaymentProvider
    let applier: ProviderPaymentApplier
    /// nil when no secret is configured: the endpoint then refuses every notification.
    let signature: MercadoPagoWebhookSignature?
    let clock: any BillingClock

    struct Receipt: Codable, Sendable {
        /// `applied`, `duplicate` or `ignored`.
        var status: String
    }

    struct Notification: Decodable {
        struct DataField: Decodable { var id: String? }
        var type: String?
        var data: DataField?
    }

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        group.post("webhook", use: receive)
    }

    @Sendable func receive(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<Receipt> {
        guard let signature else {
            throw AppError.unavailable("Payment webhooks are not configured on this server", code: "WEBHOOK_NOT_CONFIGURED")
        }
        let query = request.uri.queryParameters
        let dataID = query["data.id"].map(String.init) ?? query["id"].map(String.init)
        do {
            try signature.verify(
                header: request.headers[HTTPField.Name("x-signature")!], dataID: dataID,
                requestID: request.headers[HTTPField.Name("x-request-id")!], now: clock.now()
            )
        } catch {
            context.logger.notice("webhook signature refused", metadata: ["reason": "\(error)"])
            throw AppError.badRequest(Self.describe(error), code: "INVALID_SIGNATURE")
        }
        guard let dataID, dataID.count <= 64 else { throw AppError.badRequest("data.id is missing", code: "INVALID_NOTIFICATION") }
        let notification = try await request.decodeOptionalJSON(as: Notification.self, context: context)
        if let bodyID = notification?.data?.id, bodyID != dataID {
            throw AppError.badRequest("data.id in the body differs from the signed one", code: "INVALID_NOTIFICATION")
        }
        let type = query["type"].map(String.init) ?? query["topic"].map(String.init) ?? notification?.type
        guard type == "payment" else { return JSONResponse(Receipt(status: "ignored")) }

        let reported: ProviderPayment
        do {
            reported = try await provider.payment(id: dataID, logger: context.logger)
        } catch PaymentProviderError.rejectedByProvider(status: 404, message: _) {
            context.logger.notice("webhook names a payment the provider does not know", metadata: ["provider_payment_id": "\(dataID)"])
            return JSONResponse(Receipt(status: "ignored"))
        } catch let error as PaymentProviderError {
            throw ProviderFailure.appError(error)
        }
        let now = clock.now()
        let kind = provider.kind.rawValue
        let state = "\(reported.status.rawValue):\(reported.refundedAmount?.minorUnits ?? 0)"
        let outcome: String = try await database.transaction(logger: context.logger) { connection in
            let fresh = try await connection.query(
                """
                INSERT INTO processed_webhooks (provider, resource_id, status) VALUES (\(kind), \(reported.id), \(state))
                ON CONFLICT DO NOTHING RETURNING resource_id
                """,
                logger: context.logger
            ).collect()
            guard !fresh.isEmpty else { return "duplicate" }
            return try await applier.apply(reported, cause: .webhook, now: now, on: connection, logger: context.logger) == .applied ? "applied" : "ignored"
        }
        return JSONResponse(Receipt(status: outcome))
    }

    static func describe(_ error: any Error) -> String {
        switch error as? MercadoPagoWebhookSignature.Failure {
        case .missing(let what)?: "Missing \(what)"
        case .malformed(let what)?: "Malformed signature: \(what)"
        case .stale?: "The signature's timestamp is outside the allowed window"
        case .mismatch?, nil: "The signature does not match"
        }
    }
}
