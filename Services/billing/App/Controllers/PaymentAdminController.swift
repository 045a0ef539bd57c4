import Foundation
import HTTPTypes
import InternalAPI
import Hummingbird
import Logging
import PostgresNIO
import ServiceCore

/// `POST /api/payments/refund` (the tenant's owners and admins) and `POST /api/payments/mark-paid`
/// (super_admins, with a reason, audited).
struct PaymentAdminController: Sendable {
    let database: Database
    let provider: any PaymentProvider
    let ledger: SubscriptionLedger
    let catalog: PlanCatalog
    let clock: any BillingClock
    let verifier: AccessTokenVerifier

    struct RefundRequest: Decodable, Sendable {
        var paymentId: String?
        /// Integer minor units; nil refunds what is left. Read as any JSON value so that a fractional
        /// or non-numeric amount is a field error, not a malformed body.
        var amount: JSONValue?
    }

    struct RefundResponse: Codable, Sendable {
        var status: String
        var refundId: String
        var amount: Int64
        var paymentId: String
    }

    struct MarkPaidRequest: Decodable, Sendable {
        var tenantId: UUID?
        var plan: String?
        var reason: String?
    }

    struct MarkPaidResponse: Codable, Sendable {
        var status: String
        var message: String
        var reason: String
        var paymentId: String
    }

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        let signedIn = group.group().add(middleware: JWTAuthMiddleware(verifier: verifier))
        signedIn.post("refund", use: refund)
        signedIn.post("mark-paid", use: markPaid)
    }

    @Sendable func refund(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<RefundResponse> {
        let identity = try BillingAccess.manager(context)
        let body = try await request.decodeJSON(as: RefundRequest.self, context: context)
        guard let raw = body.paymentId else { throw AppError.validation(["payment_id": ["is required"]]) }
        let requested: Int64?
        switch body.amount {
        case nil, .null?: requested = nil
        case .integer(let value)? where value > 0: requested = value
        default: throw AppError.validation(["amount": ["must be a positive whole number of minor units"]])
        }
        guard let paymentID = UUID(uuidString: raw) else { throw AppError.notFound("Payment not found", code: "PAYMENT_NOT_FOUND") }
        let logger = context.logger
        let refundID = UUID()
        // Reserve the amount first, under the tenant's lock: two refunds at once cannot both pass the check.
        let reserved: (PaymentRecord, Int64) = try await database.transaction(logger: logger) { connection in
            try await SubscriptionLedger.lockTenant(identity.tenantUUID, on: connection, logger: logger)
            guard let payment = try await PaymentRecord.locked(paymentID, tenantID: identity.tenantUUID, on: connection, logger: logger) else {
                throw AppError.notFound("Payment not found", code: "PAYMENT_NOT_FOUND")
            }
            guard payment.status == .approved, payment.providerPaymentID != nil else {
                throw AppError.conflict("Only an approved payment can be refunded", code: "PAYMENT_NOT_REFUNDABLE")
            }
            let left = payment.amount.minorUnits - payment.refundedMinorUnits
            let amount = requested ?? left
            guard amount > 0, amount <= left else {
                throw AppError.validation(["amount": ["must not exceed what is left to refund (\(left) \(payment.amount.currency))"]])
            }
            try await connection.query("UPDATE payments SET refunded_amount = refunded_amount + \(amount), updated_at = now() WHERE id = \(payment.id)", logger: logger)
            try await connection.query(
                """
                INSERT INTO refunds (id, payment_id, tenant_id, amount, currency, status, requested_by)
                VALUES (\(refundID), \(payment.id), \(payment.tenantID), \(amount), \(payment.amount.currency), 'processing', \(identity.userUUID))
                """,
                logger: logger
            )
            return (payment, amount)
        }
        let (payment, amount) = reserved
        do {
            let refund = try await provider.refund(
                paymentID: payment.providerPaymentID!, amount: Money(minorUnits: amount, currency: payment.amount.currency),
                idempotencyKey: "billing-refund-\(refundID.uuidString.lowercased())", logger: logger
            )
            let status = ["approved", "succeeded"].contains(refund.status) ? "approved" : "pending"
            let now = clock.now()
            let ledger = ledger
            try await database.transaction(logger: logger) { connection in
                try await SubscriptionLedger.lockTenant(payment.tenantID, on: connection, logger: logger)
                try await connection.query("UPDATE refunds SET status = \(status), provider_refund_id = \(refund.id) WHERE id = \(refundID)", logger: logger)
                try await connection.query(
                    "UPDATE payments SET status = CASE WHEN refunded_amount = amount THEN 'refunded' ELSE status END WHERE id = \(payment.id)", logger: logger
                )
                // On the subscription's record too (its status and period stay, as Stripe Billing keeps them;
                // a canceled subscription's refunds are in `refunds` alone).
                if let current = try await ledger.load(payment.tenantID, on: connection, logger: logger),
                    SubscriptionStateMachine.next(from: current.status, on: .paymentRefunded) != nil
                {
                    try await ledger.record(
                        .paymentRefunded, from: current, to: current, cause: .user, reference: refundID.uuidString.lowercased(), at: now, on: connection,
                        logger: logger
                    )
                }
            }
            logger.info("payment refunded", metadata: ["payment_id": "\(payment.id)", "amount": "\(amount)"])
            return JSONResponse(RefundResponse(status: "ok", refundId: refundID.uuidString.lowercased(), amount: amount, paymentId: payment.id.uuidString.lowercased()))
        } catch let error as PaymentProviderError {
            // Refused or unknown: release the reservation; a refund that did happen shows in the next webhook.
            try await database.transaction(logger: logger) { connection in
                try await connection.query("UPDATE refunds SET status = 'failed' WHERE id = \(refundID)", logger: logger)
                try await connection.query("UPDATE payments SET refunded_amount = refunded_amount - \(amount) WHERE id = \(payment.id)", logger: logger)
            }
            throw ProviderFailure.appError(error)
        }
    }

    @Sendable func markPaid(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<MarkPaidResponse> {
        let identity = try BillingAccess.superAdmin(context)
        let body = try await request.decodeJSON(as: MarkPaidRequest.self, context: context)
        var invalid: [String: [String]] = [:]
        if body.tenantId == nil { invalid["tenant_id", default: []].append("is required") }
        let reason = body.reason?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        if reason.isEmpty { invalid["reason", default: []].append("is required") } else if reason.count > 500 { invalid["reason", default: []].append("must be at most 500 characters") }
        let plan = CheckoutController.plan(body.plan ?? "pro", in: catalog, invalid: &invalid)
        guard invalid.isEmpty, let tenantID = body.tenantId, let plan else { throw AppError.validation(invalid) }
        let now = clock.now()
        let logger = context.logger
        let ledger = ledger
        let paymentID = UUID()
        try await database.transaction(logger: logger) { connection in
            try await SubscriptionLedger.lockTenant(tenantID, on: connection, logger: logger)
            guard let current = try await ledger.load(tenantID, on: connection, logger: logger) else {
                throw AppError.notFound("This tenant has no subscription", code: "SUBSCRIPTION_NOT_FOUND")
            }
            let payment = PaymentRecord(
                id: paymentID, tenantID: tenantID, plan: plan.id, provider: "manual", kind: "manual", providerPaymentID: "manual-\(paymentID.uuidString.lowercased())",
                status: .approved, statusDetail: "marked_paid", amount: plan.price, refundedMinorUnits: 0, paymentMethod: "manual", idempotencyKey: nil,
                requestFingerprint: nil, processingUntil: nil, answer: nil, createdAt: now, approvedAt: now
            )
            try await PaymentRecord.insert(payment, on: connection, logger: logger)
            try await connection.query(
                """
                INSERT INTO manual_payment_audit (id, tenant_id, plan, payment_id, reason, actor_user_id, actor_email)
                VALUES (\(UUID()), \(tenantID), \(plan.id), \(paymentID), \(reason), \(identity.userUUID), \(identity.email))
                """,
                logger: logger
            )
            let updated = SubscriptionLedger.activated(current, tenantID: tenantID, plan: plan.id, now: now)
            try await ledger.record(.paymentApproved, from: current, to: updated, cause: .admin, reference: paymentID.uuidString.lowercased(), at: now, on: connection, logger: logger)
        }
        logger.notice("subscription marked paid by hand", metadata: ["tenant_id": "\(tenantID)", "plan": "\(plan.id)", "actor": "\(identity.userID)"])
        return JSONResponse(
            MarkPaidResponse(status: "ok", message: "The \(plan.id) plan is active for this tenant", reason: reason, paymentId: paymentID.uuidString.lowercased())
        )
    }
}
