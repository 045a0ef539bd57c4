import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import PostgresNIO
import ServiceCore

/// Stripe's routes (its hosted checkout is `CheckoutController`'s `POST /api/payments/checkout`):
/// `POST /api/payments/portal` (Stripe's Customer Portal for a tenant that paid through Stripe) and
/// `POST /api/payments/webhook/stripe` (signed events, verified as Stripe documents them, each event
/// id applied once). A completed checkout's payment is re-read from Stripe, never taken from the body;
/// invoices and subscription changes are applied from the signed body by `StripeRecurringEvents`, in
/// `created` order per subscription.
struct StripeController: Sendable {
    let database: Database
    let returnURL: String
    let verifier: AccessTokenVerifier
    let applier: ProviderPaymentApplier
    /// nil without `STRIPE_SECRET_KEY`: no portal, and checkout events cannot be re-read.
    let stripe: StripeClient?
    /// nil without `STRIPE_WEBHOOK_SECRET`: the webhook answers 503.
    let signature: StripeSignature?
    let clock: any BillingClock
    /// Stripe Billing's recurring events (invoices, subscription changes).
    let recurring: StripeRecurringEvents

    struct PortalResponse: Codable, Sendable { var url: String }

    struct Receipt: Codable, Sendable {
        /// `applied`, `duplicate` or `ignored`.
        var status: String
    }

    /// Stripe's events are small; a body larger than this is not one.
    static let maxEventBytes = 512 * 1024

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        group.post("webhook/stripe", use: webhook)
        let signedIn = group.group().add(middleware: JWTAuthMiddleware(verifier: verifier))
        signedIn.post("portal", use: portal)
    }

    @Sendable func portal(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<PortalResponse> {
        let identity = try BillingAccess.manager(context)
        guard let stripe else {
            throw AppError.unavailable("The customer portal needs Stripe, which this server is not configured for", code: "PORTAL_NOT_CONFIGURED")
        }
        let rows = try await database.query(
            "SELECT customer_id FROM stripe_customers WHERE tenant_id = \(identity.tenantUUID)", logger: context.logger
        )
        guard let customer = try rows.decode(String.self).first else {
            throw AppError(.conflict, code: "NO_STRIPE_CUSTOMER", detail: "This account has not paid through Stripe yet, so it has no customer portal")
        }
        do {
            let session = try await stripe.createPortalSession(customerID: customer, returnURL: returnURL, logger: context.logger)
            return JSONResponse(PortalResponse(url: session.url), status: .created)
        } catch let error as PaymentProviderError {
            throw ProviderFailure.appError(error)
        }
    }

    @Sendable func webhook(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<Receipt> {
        guard let signature else {
            throw AppError.unavailable("Stripe webhooks are not configured on this server", code: "WEBHOOK_NOT_CONFIGURED")
        }
        let raw: ByteBuffer
        do {
            raw = try await request.body.collect(upTo: Self.maxEventBytes)
        } catch {
            throw AppError.badRequest("A Stripe event is at most \(Self.maxEventBytes) bytes", code: "INVALID_NOTIFICATION")
        }
        do {
            try signature.verify(payload: raw.readableBytesView, header: request.headers[HTTPField.Name("Stripe-Signature")!])
        } catch {
            context.logger.notice("Stripe webhook signature refused", metadata: ["reason": "\(error)"])
            throw error.appError
        }
        let event: StripeWebhookEvent
        do {
            event = try StripeWebhookEvent.parse(Data(raw.readableBytesView))
        } catch {
            throw AppError.badRequest("Not a Stripe event: \(error.description)", code: "INVALID_NOTIFICATION")
        }
        guard event.kind != nil else {
            context.logger.info("Stripe event acknowledged, nothing to apply", metadata: ["stripe_event": "\(event.id)", "type": "\(event.type)"])
            return JSONResponse(Receipt(status: "ignored"))
        }
        let now = clock.now()
        guard case .checkoutCompleted(let completed)? = event.kind else {
            // Invoices and subscription changes: applied from the signed event, in `created` order per subscription.
            let outcome: String = try await database.transaction(logger: context.logger) { connection in
                guard try await Self.firstDelivery(of: event, on: connection, logger: context.logger) else { return "duplicate" }
                return try await recurring.apply(event, now: now, on: connection, logger: context.logger)
            }
            return JSONResponse(Receipt(status: outcome))
        }
        // The payment as Stripe holds it now, read before anything is recorded: when Stripe cannot
        // be reached the event is answered 502 and Stripe delivers it again.
        let reported = try await payment(of: completed, logger: context.logger)
        let outcome: String = try await database.transaction(logger: context.logger) { connection in
            guard try await Self.firstDelivery(of: event, on: connection, logger: context.logger) else { return "duplicate" }
            // A subscription-mode checkout links its Stripe subscription and customer; its invoices then
            // pay the periods. A one-off checkout links the customer alone.
            var linked = false
            if completed.subscriptionID != nil, completed.owner != nil {
                linked = try await recurring.apply(event, now: now, on: connection, logger: context.logger) == "applied"
            } else if let owner = completed.owner, let customer = completed.customerID {
                try await StripeRecurringEvents.linkCustomer(customer, to: owner.tenantID, on: connection, logger: context.logger)
            }
            guard let reported else { return linked ? "applied" : "ignored" }
            return try await applier.apply(reported, cause: .webhook, now: now, on: connection, logger: context.logger) == .applied ? "applied" : "ignored"
        }
        return JSONResponse(Receipt(status: outcome))
    }

    /// Records `event`'s id; false when it was applied before (Stripe delivers at least once).
    private static func firstDelivery(of event: StripeWebhookEvent, on connection: PostgresConnection, logger: Logger) async throws -> Bool {
        let fresh = try await connection.query(
            """
            INSERT INTO processed_webhooks (provider, resource_id, status) VALUES ('stripe-event', \(event.id), \(event.type))
            ON CONFLICT DO NOTHING RETURNING resource_id
            """,
            logger: logger
        ).collect()
        return !fresh.isEmpty
    }

    /// The PaymentIntent of a completed checkout as Stripe holds it now (nil for a checkout without one).
    private func payment(of completed: StripeWebhookEvent.CheckoutCompleted, logger: Logger) async throws -> ProviderPayment? {
        guard let intent = completed.paymentIntentID else { return nil }
        guard let stripe else {
            throw AppError.unavailable("Stripe events need STRIPE_SECRET_KEY to read the payment", code: "WEBHOOK_NOT_CONFIGURED")
        }
        do {
            return try await stripe.payment(id: intent, logger: logger)
        } catch let error as PaymentProviderError {
            throw ProviderFailure.appError(error)
        }
    }
}
