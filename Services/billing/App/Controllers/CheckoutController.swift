import Foundation
import HTTPTypes
import Hummingbird
import Logging
import PostgresNIO
import ServiceCore

/// `/api/payments/*` for paying: card payments (Checkout Bricks), hosted checkouts (Checkout Pro),
/// a payment's status, the payment history, and the provider's methods and issuers.
struct CheckoutController: Sendable {
    let payments: CardPayments
    let catalog: PlanCatalog
    let returnURL: String
    let verifier: AccessTokenVerifier

    struct DirectPaymentRequest: Decodable, Sendable {
        var token: String?
        var paymentMethodId: String?
        var plan: String?
        var installments: Int?
        var issuerId: Int?
        var email: String?
        var firstName: String?
        var lastName: String?
        var identificationType: String?
        var identificationNumber: String?
    }

    struct PreferenceRequest: Decodable, Sendable {
        var plan: String?
    }

    struct PreferenceResponse: Codable, Sendable {
        var preferenceId: String
        var initPoint: String
        var sandboxInitPoint: String
        var plan: String
        var amount: Int64
        var currency: String
    }

    struct CheckoutSessionResponse: Codable, Sendable {
        var sessionId: String
        var url: String
        var plan: String
        var amount: Int64
        var currency: String
    }

    struct PaymentStatusResponse: Codable, Sendable {
        var paymentId: String
        var status: String
        var statusDetail: String?
        var statusMessage: String
        var amount: Int64
        var currency: String
        var paymentMethod: String
        var dateCreated: Date?
        var dateApproved: Date?
    }

    struct Invoice: Codable, Sendable {
        var id: String
        var amount: Int64
        var currency: String
        var status: String
        var paymentType: String?
        var paidAt: Date?
        var createdAt: Date
        var plan: String
        var refundedAmount: Int64
    }

    struct InvoicesResponse: Codable, Sendable { var invoices: [Invoice] }
    struct PaymentMethodsResponse: Codable, Sendable { var paymentMethods: [MethodBody] }
    struct IssuersResponse: Codable, Sendable { var issuers: [IssuerBody] }

    struct MethodBody: Codable, Sendable {
        var id: String
        var name: String
        var paymentTypeId: String
        var thumbnail: String
        var secureThumbnail: String
        var minAllowedAmount: Int64
        var maxAllowedAmount: Int64
    }

    struct IssuerBody: Codable, Sendable {
        var id: Int
        var name: String
        var thumbnail: String
        var secureThumbnail: String
    }

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        group.get("payment-methods", use: paymentMethods)
        group.get("card-issuers/:paymentMethodID", use: cardIssuers)
        let signedIn = group.group().add(middleware: JWTAuthMiddleware(verifier: verifier))
        signedIn.post("create-preference", use: createPreference)
        signedIn.post("checkout", use: checkout)
        signedIn.post("process-payment", use: processPayment)
        signedIn.get("payment/:paymentID", use: payment)
        signedIn.get("invoices", use: invoices)
    }

    @Sendable func processPayment(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<DirectPaymentAnswer> {
        let identity = try BillingAccess.manager(context)
        let key = try Self.idempotencyKey(request)
        let body = try await request.decodeJSON(as: DirectPaymentRequest.self, context: context)
        var invalid: [String: [String]] = [:]
        let plan = Self.plan(body.plan, in: catalog, invalid: &invalid)
        let token = Self.text(body.token, "token", max: 255, invalid: &invalid)
        let method = Self.text(body.paymentMethodId, "payment_method_id", max: 64, invalid: &invalid)
        let installments = body.installments ?? 1
        if !(1...36).contains(installments) { invalid["installments", default: []].append("must be between 1 and 36") }
        if let issuer = body.issuerId, !(1...Int(Int32.max)).contains(issuer) {
            invalid["issuer_id", default: []].append("must be between 1 and \(Int32.max)")
        }
        let email = (body.email ?? identity.email).trimmingCharacters(in: .whitespaces)
        if email.count > 254 || !email.contains("@") { invalid["email", default: []].append("must be an email address") }
        for (field, value) in [("first_name", body.firstName), ("last_name", body.lastName), ("identification_type", body.identificationType), ("identification_number", body.identificationNumber)] {
            if let value, value.count > 100 { invalid[field, default: []].append("must be at most 100 characters") }
        }
        guard invalid.isEmpty, let plan, let token, let method else { throw AppError.validation(invalid) }
        let card = CardPayment(
            token: token, paymentMethodID: method, installments: installments, issuerID: body.issuerId, identificationType: body.identificationType,
            identificationNumber: body.identificationNumber, payerFirstName: body.firstName, payerLastName: body.lastName
        )
        let order = CardPaymentOrder(plan: plan, card: card, email: email, idempotencyKey: key ?? UUID().uuidString)
        return JSONResponse(try await payments.process(order, tenantID: identity.tenantUUID, logger: context.logger))
    }

    /// `POST /api/payments/checkout`: the same hosted checkout as `create-preference`, in the shape of
    /// a Stripe Checkout Session (what it is under `PAYMENT_PROVIDER=stripe`).
    @Sendable func checkout(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<CheckoutSessionResponse> {
        let (plan, hosted) = try await hostedCheckout(request, context: context)
        return JSONResponse(
            CheckoutSessionResponse(sessionId: hosted.id, url: hosted.url, plan: plan.id, amount: plan.price.minorUnits, currency: plan.price.currency),
            status: .created
        )
    }

    /// The caller's plan (validated) and a hosted checkout for it, recorded as a pending payment.
    private func hostedCheckout(_ request: Request, context: AppRequestContext) async throws -> (PlanDefinition, HostedCheckout) {
        let identity = try BillingAccess.manager(context)
        let body = try await request.decodeJSON(as: PreferenceRequest.self, context: context)
        var invalid: [String: [String]] = [:]
        guard let plan = Self.plan(body.plan, in: catalog, invalid: &invalid) else { throw AppError.validation(invalid) }
        // A second Stripe subscription would charge the tenant twice every month: plan changes and
        // renewals of one Stripe bills are made in its customer portal.
        if payments.provider.kind == .stripe,
            try await StripeRecurringEvents.liveSubscription(of: identity.tenantUUID, in: payments.database, logger: context.logger) != nil
        {
            throw AppError.conflict(
                "This account already has a Stripe subscription: change or renew it in the customer portal (POST /api/payments/portal)",
                code: "SUBSCRIPTION_MANAGED_BY_STRIPE"
            )
        }
        let (_, checkout) = try await payments.createCheckout(
            plan: plan, tenantID: identity.tenantUUID, email: identity.email, returnURL: returnURL, logger: context.logger
        )
        return (plan, checkout)
    }

    @Sendable func createPreference(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<PreferenceResponse> {
        let (plan, checkout) = try await hostedCheckout(request, context: context)
        return JSONResponse(
            PreferenceResponse(
                preferenceId: checkout.id, initPoint: checkout.url, sandboxInitPoint: checkout.sandboxURL ?? checkout.url, plan: plan.id,
                amount: plan.price.minorUnits, currency: plan.price.currency
            ),
            status: .created
        )
    }

    @Sendable func payment(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<PaymentStatusResponse> {
        let identity = try context.requireIdentity()
        guard let raw = context.parameters.get("paymentID"), let id = UUID(uuidString: raw),
            let payment = try await payments.database.transaction(logger: context.logger, { connection in
                try await PaymentRecord.locked(id, tenantID: identity.tenantUUID, on: connection, logger: context.logger)
            })
        else { throw AppError.notFound("Payment not found", code: "PAYMENT_NOT_FOUND") }
        return JSONResponse(
            PaymentStatusResponse(
                paymentId: payment.id.uuidString.lowercased(), status: payment.status.publicName, statusDetail: payment.statusDetail,
                statusMessage: payment.status.message, amount: payment.amount.minorUnits, currency: payment.amount.currency,
                paymentMethod: payment.paymentMethod ?? payment.kind, dateCreated: payment.createdAt, dateApproved: payment.approvedAt
            )
        )
    }

    @Sendable func invoices(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<InvoicesResponse> {
        let identity = try context.requireIdentity()
        var limit = 50
        if let raw = request.uri.queryParameters["limit"] {
            guard let value = Int(raw), (1...200).contains(value) else { throw AppError.validation(["limit": ["must be a whole number between 1 and 200"]]) }
            limit = value
        }
        let rows = try await payments.database.query(
            """
            SELECT \(unescaped: PaymentRecord.columns) FROM payments
            WHERE tenant_id = \(identity.tenantUUID) AND status <> 'processing' AND (provider_payment_id IS NOT NULL OR kind = 'manual')
            ORDER BY created_at DESC, id LIMIT \(limit)
            """,
            logger: context.logger
        )
        let invoices = try PaymentRecord.decode(rows).map {
            Invoice(
                id: $0.id.uuidString.lowercased(), amount: $0.amount.minorUnits, currency: $0.amount.currency, status: $0.status.publicName,
                paymentType: $0.paymentMethod ?? $0.kind, paidAt: $0.approvedAt, createdAt: $0.createdAt, plan: $0.plan, refundedAmount: $0.refundedMinorUnits
            )
        }
        return JSONResponse(InvoicesResponse(invoices: invoices))
    }

    @Sendable func paymentMethods(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<PaymentMethodsResponse> {
        let methods: [PaymentMethod]
        do { methods = try await payments.provider.paymentMethods(logger: context.logger) } catch let error as PaymentProviderError { throw ProviderFailure.appError(error) }
        return JSONResponse(
            PaymentMethodsResponse(
                paymentMethods: methods.map {
                    MethodBody(
                        id: $0.id, name: $0.name, paymentTypeId: $0.paymentTypeID, thumbnail: $0.thumbnail, secureThumbnail: $0.secureThumbnail,
                        minAllowedAmount: $0.minAllowedAmount, maxAllowedAmount: $0.maxAllowedAmount
                    )
                }
            ),
            headers: [.cacheControl: "public, max-age=300"]
        )
    }

    @Sendable func cardIssuers(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<IssuersResponse> {
        guard let method = context.parameters.get("paymentMethodID"), (1...64).contains(method.count),
            method.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") })
        else { throw AppError.notFound("Unknown payment method", code: "PAYMENT_METHOD_NOT_FOUND") }
        do {
            let issuers = try await payments.provider.cardIssuers(paymentMethodID: method, logger: context.logger)
            return JSONResponse(IssuersResponse(issuers: issuers.map { IssuerBody(id: $0.id, name: $0.name, thumbnail: $0.thumbnail, secureThumbnail: $0.secureThumbnail) }))
        } catch PaymentProviderError.rejectedByProvider(status: 404, message: _) {
            throw AppError.notFound("Unknown payment method", code: "PAYMENT_METHOD_NOT_FOUND")
        } catch let error as PaymentProviderError {
            throw ProviderFailure.appError(error)
        }
    }

    /// `Idempotency-Key`: 1–255 visible ASCII characters, or none.
    static func idempotencyKey(_ request: Request) throws -> String? {
        guard let key = request.headers[HTTPField.Name("Idempotency-Key")!] else { return nil }
        guard (1...255).contains(key.count), key.allSatisfy({ $0.isASCII && !$0.isWhitespace && $0.asciiValue! >= 0x21 && $0.asciiValue! < 0x7F }) else {
            throw AppError.badRequest("Idempotency-Key must be 1 to 255 visible ASCII characters", code: "INVALID_IDEMPOTENCY_KEY")
        }
        return key
    }

    static func plan(_ id: String?, in catalog: PlanCatalog, invalid: inout [String: [String]]) -> PlanDefinition? {
        guard let id else {
            invalid["plan", default: []].append("is required")
            return nil
        }
        guard let plan = catalog.payable(id) else {
            invalid["plan", default: []].append("must be one of \(catalog.publicPlans.map(\.id).joined(separator: ", "))")
            return nil
        }
        return plan
    }

    static func text(_ value: String?, _ field: String, max: Int, invalid: inout [String: [String]]) -> String? {
        guard let value, !value.trimmingCharacters(in: .whitespaces).isEmpty else {
            invalid[field, default: []].append("is required")
            return nil
        }
        guard value.count <= max else {
            invalid[field, default: []].append("must be at most \(max) characters")
            return nil
        }
        return value
    }
}
