import Foundation

/// Stripe's answer bodies, as its API documents them. Amounts are integers in the currency's
/// smallest unit (CLP is zero-decimal in Stripe too, so they equal `Money.minorUnits`); currencies lower-case.
enum StripeWire {
    /// `POST /v1/checkout/sessions` and `POST /v1/billing_portal/sessions`.
    struct Session: Decodable {
        var id: String
        var url: String?
    }

    struct PaymentIntent: Decodable {
        struct LastError: Decodable {
            var code: String?
            var decline_code: String?
            var message: String?
        }
        var id: String
        var amount: Int64
        var currency: String
        var status: String
        var created: Int64?
        var metadata: [String: String]?
        var latest_charge: ChargeOrID?
        var last_payment_error: LastError?
        var client_secret: String?
        var next_action: NextAction?
    }

    /// A PaymentIntent's `next_action` (`requires_action`): `use_stripe_sdk`, `redirect_to_url`, …
    struct NextAction: Decodable {
        struct Redirect: Decodable { var url: String? }
        var type: String
        var redirect_to_url: Redirect?
    }

    struct Charge: Decodable {
        struct Details: Decodable {
            struct Card: Decodable { var brand: String? }
            var type: String?
            var card: Card?
        }
        var id: String
        var created: Int64?
        var amount_refunded: Int64?
        var refunded: Bool?
        var payment_method_details: Details?
    }

    /// `latest_charge` is an id unless expanded (`expand[]=latest_charge`).
    enum ChargeOrID: Decodable {
        case id(String)
        case charge(Charge)

        init(from decoder: any Decoder) throws {
            if let id = try? decoder.singleValueContainer().decode(String.self) {
                self = .id(id)
            } else {
                self = .charge(try Charge(from: decoder))
            }
        }

        var charge: Charge? {
            if case .charge(let charge) = self { return charge }
            return nil
        }
    }

    /// `GET /v1/payment_intents/search`: `{"object": "search_result", "data": [...], "has_more", ...}`.
    struct SearchResult: Decodable {
        var data: [PaymentIntent]
    }

    struct Refund: Decodable {
        var id: String
        var amount: Int64
        var currency: String
        var status: String
    }

    /// Every error answer: `{"error": {"type", "code", "message", …}}`; a declined card (402
    /// `card_error`) also carries the PaymentIntent it left behind.
    struct ErrorEnvelope: Decodable {
        struct Body: Decodable {
            var type: String?
            var code: String?
            var decline_code: String?
            var message: String?
            var payment_intent: PaymentIntent?
        }
        var error: Body
    }
}
