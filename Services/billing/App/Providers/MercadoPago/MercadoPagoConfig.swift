import NIOCore
import ServiceCore

/// MercadoPago's credentials and endpoints, read once at start; nil from `init(settings:)` when
/// `MERCADOPAGO_ACCESS_TOKEN` is not set (MercadoPago is then not offered).
package struct MercadoPagoConfig: Sendable {
    /// `MERCADOPAGO_ACCESS_TOKEN`: the seller's private key, sent as `Authorization: Bearer` (`TEST-…` in test mode).
    package var accessToken: String
    /// `MERCADOPAGO_PUBLIC_KEY`: what the payer's browser tokenises cards with (Bricks).
    package var publicKey: String?
    /// `MERCADOPAGO_API_URL` (default `https://api.mercadopago.com`): tests point it at a local server.
    package var apiURL: String
    /// `MERCADOPAGO_NOTIFICATION_URL`: the public address of billing's `POST /api/payments/webhook`,
    /// sent as each preference's and payment's `notification_url` (none when unset: the account's own setting applies).
    package var notificationURL: String?
    /// `MERCADOPAGO_THREE_DS_MODE` (`optional` by default; `mandatory`, `not_supported`): sent as
    /// `three_d_secure_mode` on card payments, so the issuer may ask the payer for a 3-D Secure challenge.
    package var threeDSMode: String
    /// `MERCADOPAGO_CURRENCY` (default `CLP`): the account's currency, the unit of the payment
    /// methods' minimum and maximum amounts.
    package var currency: String
    /// `MERCADOPAGO_TIMEOUT_SECONDS` (default 20): the deadline of one call to MercadoPago.
    package var timeout: TimeAmount

    package static let defaultAPIURL = "https://api.mercadopago.com"
    static let threeDSModes: Set<String> = ["optional", "mandatory", "not_supported"]

    package init(
        accessToken: String, publicKey: String? = nil, apiURL: String = defaultAPIURL, notificationURL: String? = nil,
        threeDSMode: String = "optional", currency: String = "CLP", timeout: TimeAmount = .seconds(20)
    ) {
        self.accessToken = accessToken
        self.publicKey = publicKey
        self.apiURL = apiURL
        self.notificationURL = notificationURL
        self.threeDSMode = threeDSMode
        self.currency = currency
        self.timeout = timeout
    }

    package init?(settings: Settings) throws {
        guard let token = settings.optionalString("MERCADOPAGO_ACCESS_TOKEN", isSecret: true) else { return nil }
        let mode = settings.string("MERCADOPAGO_THREE_DS_MODE", default: "optional")
        guard Self.threeDSModes.contains(mode) else {
            throw ConfigurationError(variable: "MERCADOPAGO_THREE_DS_MODE", problem: "must be optional, mandatory or not_supported, got '\(mode)'")
        }
        let currency = settings.string("MERCADOPAGO_CURRENCY", default: "CLP").uppercased()
        guard currency.count == 3, currency.allSatisfy({ $0.isASCII && $0.isLetter }) else {
            throw ConfigurationError(variable: "MERCADOPAGO_CURRENCY", problem: "must be an ISO 4217 code such as CLP, got '\(currency)'")
        }
        self.init(
            accessToken: token,
            publicKey: settings.optionalString("MERCADOPAGO_PUBLIC_KEY"),
            apiURL: try settings.url("MERCADOPAGO_API_URL", default: Self.defaultAPIURL),
            notificationURL: try settings.optionalString("MERCADOPAGO_NOTIFICATION_URL").map { _ in try settings.url("MERCADOPAGO_NOTIFICATION_URL") },
            threeDSMode: mode,
            currency: currency,
            timeout: .seconds(Int64(try settings.int("MERCADOPAGO_TIMEOUT_SECONDS", default: 20, range: 1...120)))
        )
    }
}
