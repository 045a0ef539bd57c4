import AsyncHTTPClient
import Foundation
import Logging
import NIOHTTP1

/// MercadoPago's REST API (`api.mercadopago.com`): Checkout Pro preferences, card payments from
/// Bricks tokens (with 3-D Secure), payment status, refunds, payment methods and card issuers.
/// The access token goes as `Authorization: Bearer`; every payment and refund creation carries
/// `X-Idempotency-Key`, so MercadoPago answers a retry with the first outcome instead of charging again.
struct MercadoPagoClient: PaymentProvider {
    let config: MercadoPagoConfig
    let api: ProviderHTTP

    init(config: MercadoPagoConfig, http: HTTPClient) {
        self.config = config
        self.api = ProviderHTTP(provider: "MercadoPago", http: http, baseURL: config.apiURL, timeout: config.timeout)
    }

    var kind: PaymentProviderKind { .mercadopago }
    var publicKey: String? { config.publicKey }
    /// MercadoPago's test credentials start with `TEST-`.
    var isTestMode: Bool { config.accessToken.hasPrefix("TEST-") }

    func createCheckout(_ order: PaymentOrder, returnURL: String, logger: Logger) async throws -> HostedCheckout {
        let body = MercadoPagoWire.PreferenceRequest(
            items: [
                .init(
                    id: order.reference.plan, title: order.title, quantity: 1, currency_id: order.amount.currency,
                    unit_price: MajorUnits.amount(order.amount)
                )
            ],
            payer: .init(email: order.payerEmail),
            external_reference: order.reference.description,
            back_urls: .init(success: returnURL, pending: returnURL, failure: returnURL),
            auto_return: "approved",
            notification_url: config.notificationURL,
            metadata: Self.metadata(order.reference)
        )
        let answer = try await post("/checkout/preferences", body, idempotencyKey: order.idempotencyKey, logger: logger)
        let preference = try api.decode(MercadoPagoWire.Preference.self, from: answer, logger: logger)
        return HostedCheckout(id: preference.id, url: preference.init_point, sandboxURL: preference.sandbox_init_point)
    }

    func charge(_ order: PaymentOrder, card: CardPayment, logger: Logger) async throws -> ProviderPayment {
        var identification: MercadoPagoWire.PaymentRequest.Identification?
        if let type = card.identificationType, let number = card.identificationNumber { identification = .init(type: type, number: number) }
        let body = MercadoPagoWire.PaymentRequest(
            transaction_amount: MajorUnits.amount(order.amount),
            token: card.token,
            description: order.title,
            installments: card.installments,
            payment_method_id: card.paymentMethodID,
            issuer_id: card.issuerID,
            payer: .init(email: order.payerEmail, first_name: card.payerFirstName, last_name: card.payerLastName, identification: identification),
            external_reference: order.reference.description,
            notification_url: config.notificationURL,
            three_d_secure_mode: config.threeDSMode,
            metadata: Self.metadata(order.reference)
        )
        let answer = try await post("/v1/payments", body, idempotencyKey: order.idempotencyKey, logger: logger)
        return try Self.normalise(api.decode(MercadoPagoWire.Payment.self, from: answer, logger: logger))
    }

    func payment(id: String, logger: Logger) async throws -> ProviderPayment {
        let answer = try await get("/v1/payments/\(try Self.paymentID(id))", logger: logger)
        return try Self.normalise(api.decode(MercadoPagoWire.Payment.self, from: answer, logger: logger))
    }

    /// `GET /v1/payments/search?external_reference=…`: the payment created under billing's reference,
    /// newest first (a charge whose answer timed out is found here once MercadoPago made it).
    func findPayment(reference: PaymentReference, idempotencyKey: String, logger: Logger) async throws -> ProviderPayment? {
        let query = "external_reference=\(ProviderHTTP.escape(reference.description))&sort=date_created&criteria=desc&limit=10"
        let answer = try await get("/v1/payments/search?\(query)", logger: logger)
        let found = try api.decode(MercadoPagoWire.SearchResult.self, from: answer, logger: logger)
        return try found.results.first { $0.external_reference == reference.description }.map(Self.normalise)
    }

    func refund(paymentID: String, amount: Money?, idempotencyKey: String, logger: Logger) async throws -> ProviderRefund {
        let id = try Self.paymentID(paymentID)
        // The refund's answer names no currency: take it from the amount asked for, or from the payment.
        let currency: String
        if let amount { currency = amount.currency } else { currency = try await payment(id: id, logger: logger).amount.currency }
        let body = MercadoPagoWire.RefundRequest(amount: amount.map(MajorUnits.amount))
        let answer = try await post("/v1/payments/\(id)/refunds", body, idempotencyKey: idempotencyKey, logger: logger)
        let refund = try api.decode(MercadoPagoWire.Refund.self, from: answer, logger: logger)
        guard let refunded = MajorUnits.money(refund.amount, currency: currency) else {
            throw PaymentProviderError.unavailable("MercadoPago answered a refund amount billing cannot read")
        }
        return ProviderRefund(id: String(refund.id), amount: refunded, status: refund.status)
    }

    func paymentMethods(logger: Logger) async throws -> [PaymentMethod] {
        let answer = try await get("/v1/payment_methods", logger: logger)
        let methods = try api.decode([MercadoPagoWire.PaymentMethod].self, from: answer, logger: logger)
        return methods.filter { $0.status == "active" }.map { method in
            PaymentMethod(
                id: method.id, name: method.name, paymentTypeID: method.payment_type_id, thumbnail: method.thumbnail ?? "",
                secureThumbnail: method.secure_thumbnail ?? "",
                minAllowedAmount: method.min_allowed_amount.flatMap { MajorUnits.money($0, currency: config.currency)?.minorUnits } ?? 0,
                maxAllowedAmount: method.max_allowed_amount.flatMap { MajorUnits.money($0, currency: config.currency)?.minorUnits } ?? 0
            )
        }
    }

    func cardIssuers(paymentMethodID: String, logger: Logger) async throws -> [CardIssuer] {
        let query = ProviderHTTP.escape(paymentMethodID)
        let answer = try await get("/v1/payment_methods/card_issuers?payment_method_id=\(query)", logger: logger)
        let issuers = try api.decode([MercadoPagoWire.CardIssuer].self, from: answer, logger: logger)
        return issuers.filter { ($0.status ?? "active") == "active" }.map { issuer in
            CardIssuer(id: issuer.id.value, name: issuer.name, thumbnail: issuer.thumbnail ?? "", secureThumbnail: issuer.secure_thumbnail ?? "")
        }
    }

    // MARK: - Wire

    private var authorization: (String, String) { ("Authorization", "Bearer \(config.accessToken)") }

    private func get(_ path: String, logger: Logger) async throws -> ProviderHTTP.Answer {
        try Self.refusal(await api.send(.GET, path, headers: [authorization], body: nil, logger: logger))
    }

    private func post(_ path: String, _ body: some Encodable, idempotencyKey: String, logger: Logger) async throws -> ProviderHTTP.Answer {
        let data = try JSONEncoder().encode(body)
        let headers = [authorization, ("Content-Type", "application/json"), ("X-Idempotency-Key", idempotencyKey)]
        return try Self.refusal(await api.send(.POST, path, headers: headers, body: data, logger: logger))
    }

    /// A 4xx becomes `.rejectedByProvider` with MercadoPago's own message (and first cause).
    private static func refusal(_ answer: ProviderHTTP.Answer) throws -> ProviderHTTP.Answer {
        guard answer.status >= 400 else { return answer }
        let error = try? JSONDecoder().decode(MercadoPagoWire.ErrorBody.self, from: answer.body)
        var message = error?.message ?? error?.error ?? "MercadoPago refused the request"
        if let cause = error?.cause?.first, let text = cause.description, text != message {
            message += " (\(cause.code.map { "\($0): " } ?? "")\(text))"
        }
        throw PaymentProviderError.rejectedByProvider(status: answer.status, message: message)
    }

    /// MercadoPago's payment ids are numbers; anything else would change the path asked for.
    private static func paymentID(_ id: String) throws -> String {
        guard !id.isEmpty, id.count <= 20, id.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            throw PaymentProviderError.rejectedByProvider(status: 404, message: "Not a MercadoPago payment id")
        }
        return id
    }

    private static func metadata(_ reference: PaymentReference) -> [String: String] {
        ["tenant_id": reference.tenantID.uuidString.lowercased(), "plan": reference.plan, "payment_id": reference.paymentID.uuidString.lowercased()]
    }

    static func normalise(_ payment: MercadoPagoWire.Payment) throws -> ProviderPayment {
        guard let amount = MajorUnits.money(payment.transaction_amount, currency: payment.currency_id) else {
            throw PaymentProviderError.unavailable("MercadoPago answered an amount billing cannot read")
        }
        let refunded = payment.transaction_amount_refunded.flatMap { MajorUnits.money($0, currency: payment.currency_id) }
        return ProviderPayment(
            id: String(payment.id),
            status: status(payment.status),
            statusDetail: payment.status_detail,
            amount: amount,
            refundedAmount: refunded.flatMap { $0.minorUnits > 0 ? $0 : nil },
            paymentMethodID: payment.payment_method_id,
            reference: payment.external_reference,
            createdAt: payment.date_created.flatMap(date),
            approvedAt: payment.date_approved.flatMap(date),
            threeDSInfo: payment.three_ds_info.map { ThreeDSInfo(externalResourceURL: $0.external_resource_url, creq: $0.creq) }
        )
    }

    /// MercadoPago's payment statuses. `in_mediation` (a dispute opened, the money held) stays
    /// approved until it ends as `charged_back`; an unknown status never counts as paid.
    static func status(_ status: String) -> ProviderPayment.Status {
        switch status {
        case "approved", "in_mediation": .approved
        case "rejected": .rejected
        case "cancelled": .cancelled
        case "refunded": .refunded
        case "charged_back": .chargedBack
        default: .pending  // pending, in_process, authorized, and anything new
        }
    }

    /// `2024-05-01T10:20:30.000-04:00`, with or without the fraction.
    static func date(_ text: String) -> Date? {
        if let date = try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) { return date }
        return try? Date(text, strategy: Date.ISO8601FormatStyle())
    }
}
