import Foundation

/// A verified Stripe webhook body (`StripeSignature` first), reduced to what billing acts on.
/// Five event types are read; any other is `kind == nil` and acknowledged without effect. `created`
/// orders events, which Stripe delivers in no particular order: an older one must never undo a newer one.
struct StripeWebhookEvent: Sendable, Equatable {
    /// `evt_…`: applying an event once means once per this id.
    var id: String
    var type: String
    var created: Date
    var livemode: Bool
    var kind: Kind?

    enum Kind: Sendable, Equatable {
        /// `checkout.session.completed`: the payer finished a Checkout Session (paid, or subscribed).
        case checkoutCompleted(CheckoutCompleted)
        /// `invoice.paid`: a subscription period was paid.
        case invoicePaid(Invoice)
        /// `invoice.payment_failed`: charging a period failed (Stripe retries on its own schedule).
        case invoicePaymentFailed(Invoice)
        /// `customer.subscription.updated`: status, period, plan or cancel-at-period-end changed.
        case subscriptionUpdated(Subscription)
        /// `customer.subscription.deleted`: the subscription ended.
        case subscriptionDeleted(Subscription)
    }

    /// Whose payment it is: from `client_reference_id` (a `PaymentReference`) or the
    /// `tenant_id`/`plan` metadata billing put on the session and subscription.
    struct Owner: Sendable, Equatable {
        var tenantID: UUID
        var plan: String
        /// billing's own payment id, when the reference carried one.
        var paymentID: UUID?
    }

    struct CheckoutCompleted: Sendable, Equatable {
        var sessionID: String
        var owner: Owner?
        /// `payment` or `subscription`.
        var mode: String?
        /// `paid`, `unpaid` (a delayed method still pending) or `no_payment_required`.
        var paymentStatus: String?
        var customerID: String?
        var subscriptionID: String?
        var paymentIntentID: String?
        var amountTotal: Money?
    }

    struct Invoice: Sendable, Equatable {
        var invoiceID: String
        var owner: Owner?
        var customerID: String?
        var subscriptionID: String?
        /// `amount_paid` for a paid invoice, `amount_due` for a failed one.
        var amount: Money?
        /// The end of the period the invoice bills (its first line's `period.end`).
        var periodEnd: Date?
        var attemptCount: Int?
        /// The start of the period the invoice bills: its first line's `period.start` (the invoice's own
        /// `period_start`/`period_end` are when its items were gathered, not the subscription's period).
        var periodStart: Date? = nil
        /// The PaymentIntent that paid it (`payment_intent` before 2025-03-31, `payments.data[].payment` since).
        var paymentIntentID: String? = nil
        /// The first line's price, which names the plan (`lookup_key` or `metadata.plan`).
        var price: Price? = nil
    }

    /// A price as Stripe shows it on a line or a subscription item.
    struct Price: Sendable, Equatable {
        var id: String?
        var lookupKey: String?
        /// `metadata.plan` of the price.
        var plan: String?
    }

    struct Subscription: Sendable, Equatable {
        var subscriptionID: String
        var owner: Owner?
        var customerID: String?
        /// Stripe's status: `active`, `past_due`, `canceled`, `unpaid`, `incomplete`, `trialing`, …
        var status: String
        var currentPeriodStart: Date?
        var currentPeriodEnd: Date?
        var cancelAtPeriodEnd: Bool
        /// The first item's price (`price_…`), which names the plan in Stripe.
        var priceID: String?
        /// That price's `lookup_key` and `metadata.plan`.
        var price: Price? = nil
    }

    /// A body that is not a Stripe event, or an event of a handled type whose object lacks what it must have.
    struct Malformed: Error, Equatable, CustomStringConvertible {
        var description: String
    }

    /// Parses a webhook body. Unknown types are not an error: `kind` is nil.
    static func parse(_ body: Data) throws(Malformed) -> StripeWebhookEvent {
        let envelope: Wire.Envelope
        do {
            envelope = try JSONDecoder().decode(Wire.Envelope.self, from: body)
        } catch {
            throw Malformed(description: "not a Stripe event: \(error)")
        }
        var event = StripeWebhookEvent(
            id: envelope.id, type: envelope.type, created: Date(timeIntervalSince1970: TimeInterval(envelope.created)),
            livemode: envelope.livemode ?? false, kind: nil
        )
        guard Self.handledTypes.contains(envelope.type) else { return event }
        let object: Wire.Object
        do {
            object = try JSONDecoder().decode(Wire.DataEnvelope.self, from: body).data.object
        } catch {
            throw Malformed(description: "\(envelope.type) without a readable data.object: \(error)")
        }
        guard let id = object.id, !id.isEmpty else { throw Malformed(description: "\(envelope.type) object without an id") }
        let currency = object.currency?.uppercased()
        func money(_ amount: Int64?) -> Money? {
            guard let amount, let currency else { return nil }
            return Money(minorUnits: amount, currency: currency)
        }
        switch envelope.type {
        case "checkout.session.completed":
            event.kind = .checkoutCompleted(
                CheckoutCompleted(
                    sessionID: id, owner: owner(reference: object.client_reference_id, metadata: object.metadata), mode: object.mode,
                    paymentStatus: object.payment_status, customerID: object.customer?.id, subscriptionID: object.subscription?.id,
                    paymentIntentID: object.payment_intent?.id, amountTotal: money(object.amount_total)
                )
            )
        case "invoice.paid", "invoice.payment_failed":
            let details = object.parent?.subscription_details ?? object.subscription_details
            let line = object.lines?.data.first
            let invoice = Invoice(
                invoiceID: id, owner: owner(reference: nil, metadata: details?.metadata ?? line?.metadata ?? object.metadata),
                customerID: object.customer?.id, subscriptionID: details?.subscription?.id ?? object.subscription?.id,
                amount: money(envelope.type == "invoice.paid" ? object.amount_paid : object.amount_due),
                periodEnd: (line?.period?.end ?? object.period_end).map(Self.date), attemptCount: object.attempt_count,
                periodStart: line?.period?.start.map(Self.date),
                paymentIntentID: object.payment_intent?.id ?? object.payments?.data.lazy.compactMap({ $0.payment?.payment_intent?.id }).first,
                price: (line?.price ?? line?.pricing?.price_details?.price).map(Self.price)
            )
            event.kind = envelope.type == "invoice.paid" ? .invoicePaid(invoice) : .invoicePaymentFailed(invoice)
        default:  // customer.subscription.updated / deleted
            guard let status = object.status else { throw Malformed(description: "\(envelope.type) object without a status") }
            let item = object.items?.data.first
            let subscription = Subscription(
                subscriptionID: id, owner: owner(reference: nil, metadata: object.metadata), customerID: object.customer?.id, status: status,
                // Since API version 2025-03-31 the period lives on each item, before it on the subscription.
                currentPeriodStart: (object.current_period_start ?? item?.current_period_start).map(Self.date),
                currentPeriodEnd: (object.current_period_end ?? item?.current_period_end).map(Self.date),
                cancelAtPeriodEnd: object.cancel_at_period_end ?? false, priceID: item?.price?.id, price: item?.price.map(Self.price)
            )
            event.kind = envelope.type == "customer.subscription.updated" ? .subscriptionUpdated(subscription) : .subscriptionDeleted(subscription)
        }
        return event
    }

    static let handledTypes: Set<String> = [
        "checkout.session.completed", "invoice.paid", "invoice.payment_failed", "customer.subscription.updated", "customer.subscription.deleted",
    ]

    private static func date(_ seconds: Int64) -> Date { Date(timeIntervalSince1970: TimeInterval(seconds)) }

    private static func price(_ price: Wire.Price) -> Price {
        Price(id: price.id, lookupKey: price.lookup_key, plan: price.metadata?["plan"])
    }

    private static func owner(reference: String?, metadata: [String: String]?) -> Owner? {
        if let reference, let parsed = PaymentReference(reference) {
            return Owner(tenantID: parsed.tenantID, plan: parsed.plan, paymentID: parsed.paymentID)
        }
        if let text = metadata?["reference"], let parsed = PaymentReference(text) {
            return Owner(tenantID: parsed.tenantID, plan: parsed.plan, paymentID: parsed.paymentID)
        }
        guard let tenant = metadata?["tenant_id"].flatMap(UUID.init(uuidString:)), let plan = metadata?["plan"], !plan.isEmpty else { return nil }
        return Owner(tenantID: tenant, plan: plan, paymentID: metadata?["payment_id"].flatMap(UUID.init(uuidString:)))
    }

    /// The parts of Stripe's objects read here; everything else in them is ignored.
    enum Wire {
        struct Envelope: Decodable {
            var id: String
            var type: String
            var created: Int64
            var livemode: Bool?
        }
        struct DataEnvelope: Decodable {
            struct Inner: Decodable { var object: Object }
            var data: Inner
        }
        /// An id, or the object expanded in its place.
        struct Reference: Decodable {
            var id: String
            init(from decoder: any Decoder) throws {
                if let id = try? decoder.singleValueContainer().decode(String.self) {
                    self.id = id
                } else {
                    struct Expanded: Decodable { var id: String }
                    self.id = try Expanded(from: decoder).id
                }
            }
        }
        struct SubscriptionDetails: Decodable {
            var subscription: Reference?
            var metadata: [String: String]?
        }
        struct Parent: Decodable { var subscription_details: SubscriptionDetails? }
        struct Period: Decodable {
            var start: Int64?
            var end: Int64?
        }
        /// A price expanded, or only its id (a line's `pricing.price_details.price` since 2025-03-31).
        struct Price: Decodable {
            var id: String?
            var lookup_key: String?
            var metadata: [String: String]?
            init(from decoder: any Decoder) throws {
                if let id = try? decoder.singleValueContainer().decode(String.self) {
                    self.id = id
                } else {
                    enum Key: String, CodingKey { case id, lookup_key, metadata }
                    let container = try decoder.container(keyedBy: Key.self)
                    id = try container.decodeIfPresent(String.self, forKey: .id)
                    lookup_key = try container.decodeIfPresent(String.self, forKey: .lookup_key)
                    metadata = try container.decodeIfPresent([String: String].self, forKey: .metadata)
                }
            }
        }
        struct Pricing: Decodable {
            struct Details: Decodable { var price: Price? }
            var price_details: Details?
        }
        struct Line: Decodable {
            var period: Period?
            var metadata: [String: String]?
            var price: Price?
            var pricing: Pricing?
        }
        struct Lines: Decodable { var data: [Line] }
        struct InvoicePayments: Decodable {
            struct Entry: Decodable {
                struct Payment: Decodable { var payment_intent: Reference? }
                var payment: Payment?
            }
            var data: [Entry]
        }
        struct Item: Decodable {
            var price: Price?
            var current_period_start: Int64?
            var current_period_end: Int64?
        }
        struct Items: Decodable { var data: [Item] }
        /// The union of the fields of a Checkout Session, an Invoice and a Subscription.
        struct Object: Decodable {
            var id: String?
            var customer: Reference?
            var metadata: [String: String]?
            var currency: String?
            // Checkout Session
            var client_reference_id: String?
            var mode: String?
            var payment_status: String?
            var subscription: Reference?
            var payment_intent: Reference?
            var amount_total: Int64?
            // Invoice
            var amount_paid: Int64?
            var amount_due: Int64?
            var attempt_count: Int?
            var period_end: Int64?
            var lines: Lines?
            var payments: InvoicePayments?
            var parent: Parent?
            var subscription_details: SubscriptionDetails?
            // Subscription
            var status: String?
            var current_period_start: Int64?
            var current_period_end: Int64?
            var cancel_at_period_end: Bool?
            var items: Items?
        }
    }
}
