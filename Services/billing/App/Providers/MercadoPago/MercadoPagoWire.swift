import Foundation

/// MercadoPago's request and answer bodies, as its REST API documents them (JSON, snake_case).
/// Amounts are `Decimal` in major units (`19990` CLP, `1234.5` BRL): see `MajorUnits`.
enum MercadoPagoWire {
    /// `POST /checkout/preferences` (Checkout Pro).
    struct PreferenceRequest: Encodable {
        struct Item: Encodable {
            var id: String
            var title: String
            var quantity: Int
            var currency_id: String
            var unit_price: Decimal
        }
        struct Payer: Encodable { var email: String }
        struct BackURLs: Encodable {
            var success: String
            var pending: String
            var failure: String
        }
        var items: [Item]
        var payer: Payer
        var external_reference: String
        var back_urls: BackURLs
        var auto_return: String
        var notification_url: String?
        var metadata: [String: String]
    }

    struct Preference: Decodable {
        var id: String
        var init_point: String
        var sandbox_init_point: String?
    }

    /// `POST /v1/payments` (Checkout API / Bricks, a card token from the payer's browser).
    struct PaymentRequest: Encodable {
        struct Identification: Encodable {
            var type: String
            var number: String
        }
        struct Payer: Encodable {
            var email: String
            var first_name: String?
            var last_name: String?
            var identification: Identification?
        }
        var transaction_amount: Decimal
        var token: String
        var description: String
        var installments: Int
        var payment_method_id: String
        var issuer_id: Int?
        var payer: Payer
        var external_reference: String
        var notification_url: String?
        var three_d_secure_mode: String
        var metadata: [String: String]
    }

    struct Payment: Decodable {
        struct ThreeDSInfo: Decodable {
            var external_resource_url: String
            var creq: String
        }
        var id: Int64
        var status: String
        var status_detail: String?
        var transaction_amount: Decimal
        var transaction_amount_refunded: Decimal?
        var currency_id: String
        var payment_method_id: String?
        var external_reference: String?
        var date_created: String?
        var date_approved: String?
        var three_ds_info: ThreeDSInfo?
    }

    /// `GET /v1/payments/search`: `{"paging": {...}, "results": [payment, …]}`.
    struct SearchResult: Decodable {
        var results: [Payment]
    }

    /// `POST /v1/payments/{id}/refunds`: `{}` refunds the rest, `{"amount": …}` part of it.
    struct RefundRequest: Encodable {
        var amount: Decimal?
    }

    struct Refund: Decodable {
        var id: Int64
        var amount: Decimal
        var status: String
    }

    /// One entry of `GET /v1/payment_methods`.
    struct PaymentMethod: Decodable {
        var id: String
        var name: String
        var payment_type_id: String
        var status: String
        var thumbnail: String?
        var secure_thumbnail: String?
        var min_allowed_amount: Decimal?
        var max_allowed_amount: Decimal?
    }

    /// One entry of `GET /v1/payment_methods/card_issuers`: its `id` is documented as a string of digits.
    struct CardIssuer: Decodable {
        var id: FlexibleID
        var name: String
        var thumbnail: String?
        var secure_thumbnail: String?
        var status: String?
    }

    /// An id MercadoPago writes as `"310"` in some answers and `310` in others.
    struct FlexibleID: Decodable {
        var value: Int

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let number = try? container.decode(Int.self) {
                value = number
            } else if let text = try? container.decode(String.self), let number = Int(text) {
                value = number
            } else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "not an issuer id")
            }
        }
    }

    /// Every 4xx answer: `{"message", "error", "status", "cause": [{"code", "description"}]}`.
    struct ErrorBody: Decodable {
        struct Cause: Decodable {
            var code: FlexibleCode?
            var description: String?
        }
        var message: String?
        var error: String?
        var status: Int?
        var cause: [Cause]?
    }

    /// A cause code MercadoPago writes as a number (`2006`) or a string (`"2006"`).
    struct FlexibleCode: Decodable, CustomStringConvertible {
        var description: String

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let number = try? container.decode(Int.self) {
                description = String(number)
            } else {
                description = try container.decode(String.self)
            }
        }
    }
}
