import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import ServiceCore
import TestSupport
import Testing

@testable import BillingApp

/// `MercadoPagoClient` against a local server answering as MercadoPago's REST API documents:
/// JSON bodies, `Authorization: Bearer`, `X-Idempotency-Key` on creations, amounts as decimal
/// numbers in major units, errors as `{message, error, status, cause}`.
@Suite("MercadoPago client")
struct MercadoPagoClientTests {
    static let logger = Logger(label: "mercadopago-test")
    static let tenant = UUID(uuidString: "0b6f4c8e-3a1d-4f2b-9c7e-5d8a1b2c3d4e")!
    static let paymentID = UUID(uuidString: "7d9e2f1a-4b3c-4d5e-8f6a-1b2c3d4e5f6a")!
    static let reference = PaymentReference(tenantID: tenant, plan: "pro", paymentID: paymentID)

    static func order(_ amount: Money = Money(minorUnits: 49_990, currency: "CLP")) -> PaymentOrder {
        PaymentOrder(reference: reference, amount: amount, title: "Pro plan", payerEmail: "owner@example.com", idempotencyKey: "idem-123")
    }

    static func client(_ url: String, _ http: HTTPClient, timeout: TimeAmount = .seconds(5)) -> MercadoPagoClient {
        MercadoPagoClient(
            config: MercadoPagoConfig(
                accessToken: "TEST-4491-access", publicKey: "TEST-pk-1", apiURL: url, notificationURL: "https://billing.example.com/api/payments/webhook",
                timeout: timeout
            ),
            http: http
        )
    }

    /// A payment as `GET /v1/payments/{id}` documents it.
    static func paymentJSON(
        id: Int64 = 1_319_531_342, status: String = "approved", detail: String = "accredited", amount: String = "49990", currency: String = "CLP",
        refunded: String = "0", extra: String = ""
    ) -> String {
        """
        {"id": \(id), "status": "\(status)", "status_detail": "\(detail)", "transaction_amount": \(amount),
         "transaction_amount_refunded": \(refunded), "currency_id": "\(currency)", "payment_method_id": "visa",
         "payment_type_id": "credit_card", "external_reference": "\(reference.description)",
         "date_created": "2026-11-29T17:00:00.000-04:00", "date_approved": "2026-11-29T17:00:02.000-04:00",
         "payer": {"email": "owner@example.com"}, "installments": 1\(extra)}
        """
    }

    @Test func checkoutProPreferenceIsCreatedAsDocumented() async throws {
        let reply = """
            {"id": "202809963-920c288b-4ebb-40be-966f-700250fa5370", "collector_id": 202809963,
             "init_point": "https://www.mercadopago.cl/checkout/v1/redirect?pref_id=202809963-920c288b",
             "sandbox_init_point": "https://sandbox.mercadopago.cl/checkout/v1/redirect?pref_id=202809963-920c288b",
             "external_reference": "\(Self.reference.description)", "items": []}
            """
        try await ProviderTestServer.with({ _ in .json(201, reply) }) { server, http in
            let checkout = try await Self.client(server.url, http).createCheckout(Self.order(), returnURL: "https://app.example.com/billing", logger: Self.logger)
            #expect(checkout.id == "202809963-920c288b-4ebb-40be-966f-700250fa5370")
            #expect(checkout.url == "https://www.mercadopago.cl/checkout/v1/redirect?pref_id=202809963-920c288b")
            #expect(checkout.sandboxURL == "https://sandbox.mercadopago.cl/checkout/v1/redirect?pref_id=202809963-920c288b")

            let sent = try #require(server.received.first)
            #expect(server.received.count == 1)
            #expect(sent.method == "POST" && sent.path == "/checkout/preferences")
            #expect(sent.header("Authorization") == "Bearer TEST-4491-access")
            #expect(sent.header("X-Idempotency-Key") == "idem-123")
            #expect(sent.header("Content-Type") == "application/json")
            // CLP has no decimals: the price goes as the whole number of pesos, never 49990.0.
            #expect(sent.body.contains(#""unit_price":49990"#) && !sent.body.contains("49990."))
            let body = try sent.json()
            let item = try #require((body["items"] as? [[String: Any]])?.first)
            #expect(item["title"] as? String == "Pro plan")
            #expect(item["quantity"] as? Int == 1)
            #expect(item["currency_id"] as? String == "CLP")
            #expect(body["external_reference"] as? String == Self.reference.description)
            #expect(body["notification_url"] as? String == "https://billing.example.com/api/payments/webhook")
            #expect((body["payer"] as? [String: Any])?["email"] as? String == "owner@example.com")
            let back = try #require(body["back_urls"] as? [String: String])
            #expect(back == ["success": "https://app.example.com/billing", "pending": "https://app.example.com/billing", "failure": "https://app.example.com/billing"])
            #expect(body["auto_return"] as? String == "approved")
            #expect((body["metadata"] as? [String: String])?["tenant_id"] == Self.tenant.uuidString.lowercased())
        }
    }

    @Test func cardPaymentSendsTheBrickFieldsAndReturnsTheThreeDSChallenge() async throws {
        let reply = Self.paymentJSON(
            status: "pending", detail: "pending_challenge",
            extra: #", "three_ds_info": {"external_resource_url": "https://acs.example.com/challenge", "creq": "eyJ0aHJlZURTU2VydmVyVHJhbnNJRCI6IjEifQ"}"#
        )
        try await ProviderTestServer.with({ _ in .json(201, reply) }) { server, http in
            let card = CardPayment(
                token: "ff8080814c11e237014c1ff593b57b4d", paymentMethodID: "visa", installments: 3, issuerID: 310,
                identificationType: "RUT", identificationNumber: "11111111-1", payerFirstName: "Ana", payerLastName: "Rojas"
            )
            let payment = try await Self.client(server.url, http).charge(Self.order(), card: card, logger: Self.logger)
            #expect(payment.id == "1319531342")
            #expect(payment.status == .pending)
            #expect(payment.statusDetail == "pending_challenge")
            #expect(payment.threeDSInfo == ThreeDSInfo(externalResourceURL: "https://acs.example.com/challenge", creq: "eyJ0aHJlZURTU2VydmVyVHJhbnNJRCI6IjEifQ"))
            #expect(payment.amount == Money(minorUnits: 49_990, currency: "CLP"))
            #expect(payment.reference == Self.reference.description)

            let sent = try #require(server.received.first)
            #expect(sent.method == "POST" && sent.path == "/v1/payments")
            #expect(sent.header("Authorization") == "Bearer TEST-4491-access")
            #expect(sent.header("X-Idempotency-Key") == "idem-123")
            #expect(sent.body.contains(#""transaction_amount":49990"#))
            let body = try sent.json()
            #expect(body["token"] as? String == "ff8080814c11e237014c1ff593b57b4d")
            #expect(body["payment_method_id"] as? String == "visa")
            #expect(body["installments"] as? Int == 3)
            #expect(body["issuer_id"] as? Int == 310)
            #expect(body["three_d_secure_mode"] as? String == "optional")
            #expect(body["description"] as? String == "Pro plan")
            #expect(body["external_reference"] as? String == Self.reference.description)
            let payer = try #require(body["payer"] as? [String: Any])
            #expect(payer["email"] as? String == "owner@example.com")
            #expect(payer["first_name"] as? String == "Ana")
            #expect(payer["identification"] as? [String: String] == ["type": "RUT", "number": "11111111-1"])
        }
    }

    @Test func amountsWithDecimalsRoundTripExactly() async throws {
        // 0.29 and 1234.56 have no exact binary form: a Double on the way would show as 0.28999….
        let reply = Self.paymentJSON(amount: "1234.56", currency: "BRL", refunded: "0.29")
        try await ProviderTestServer.with({ _ in .json(201, reply) }) { server, http in
            let card = CardPayment(token: "tok", paymentMethodID: "master", installments: 1, issuerID: nil)
            let payment = try await Self.client(server.url, http).charge(Self.order(Money(minorUnits: 123_456, currency: "BRL")), card: card, logger: Self.logger)
            #expect(payment.amount == Money(minorUnits: 123_456, currency: "BRL"))
            #expect(payment.refundedAmount == Money(minorUnits: 29, currency: "BRL"))
            let sent = try #require(server.received.first)
            #expect(sent.body.contains(#""transaction_amount":1234.56"#))
            #expect(try sent.json()["issuer_id"] == nil)
        }
        #expect(MajorUnits.amount(Money(minorUnits: 5, currency: "USD")) == Decimal(string: "0.05"))
        #expect(MajorUnits.money(Decimal(string: "19990")!, currency: "clp") == Money(minorUnits: 19_990, currency: "CLP"))
        // More decimals than the currency has is not an amount billing rounds silently.
        #expect(MajorUnits.money(Decimal(string: "19990.5")!, currency: "CLP") == nil)
        #expect(MajorUnits.money(Decimal(string: "10.005")!, currency: "USD") == nil)
    }

    @Test func paymentStatusIsReadFromMercadoPagoAndNormalised() async throws {
        let statuses: [(String, ProviderPayment.Status)] = [
            ("approved", .approved), ("pending", .pending), ("in_process", .pending), ("authorized", .pending), ("rejected", .rejected),
            ("cancelled", .cancelled), ("refunded", .refunded), ("charged_back", .chargedBack), ("in_mediation", .approved),
            ("something_new", .pending),
        ]
        for (wire, expected) in statuses { #expect(MercadoPagoClient.status(wire) == expected, "\(wire)") }

        try await ProviderTestServer.with({ _ in .json(200, Self.paymentJSON(status: "refunded", detail: "refunded", refunded: "49990")) }) { server, http in
            let payment = try await Self.client(server.url, http).payment(id: "1319531342", logger: Self.logger)
            #expect(payment.status == .refunded)
            #expect(payment.refundedAmount == Money(minorUnits: 49_990, currency: "CLP"))
            #expect(payment.paymentMethodID == "visa")
            #expect(payment.createdAt == Date(timeIntervalSince1970: 1_795_986_000))  // 2026-11-29T21:00:00Z
            #expect(payment.approvedAt == Date(timeIntervalSince1970: 1_795_986_002))
            let sent = try #require(server.received.first)
            #expect(sent.method == "GET" && sent.path == "/v1/payments/1319531342")
            #expect(sent.header("Authorization") == "Bearer TEST-4491-access")
            #expect(sent.body.isEmpty)
        }
    }

    @Test func refundsArePartialWithAnAmountAndFullWithout() async throws {
        try await ProviderTestServer.with({ request in
            if request.method == "GET" { return .json(200, Self.paymentJSON()) }
            let amount = request.body.contains("amount") ? "10000" : "49990"
            return .json(201, #"{"id": 1009042015, "payment_id": 1319531342, "amount": \#(amount), "status": "approved", "refund_mode": "standard"}"#)
        }) { server, http in
            let client = Self.client(server.url, http)
            let partial = try await client.refund(paymentID: "1319531342", amount: Money(minorUnits: 10_000, currency: "CLP"), idempotencyKey: "refund-1", logger: Self.logger)
            #expect(partial == ProviderRefund(id: "1009042015", amount: Money(minorUnits: 10_000, currency: "CLP"), status: "approved"))
            let first = try #require(server.received.first)
            #expect(first.method == "POST" && first.path == "/v1/payments/1319531342/refunds")
            #expect(first.header("X-Idempotency-Key") == "refund-1")
            #expect(first.body == #"{"amount":10000}"#)

            let full = try await client.refund(paymentID: "1319531342", amount: nil, idempotencyKey: "refund-2", logger: Self.logger)
            #expect(full.amount == Money(minorUnits: 49_990, currency: "CLP"))
            // The refund's answer names no currency, so the payment is read first; the body is empty: the rest of it.
            #expect(server.received.map(\.method) == ["POST", "GET", "POST"])
            #expect(server.received[2].body == "{}")
            #expect(server.received[2].header("X-Idempotency-Key") == "refund-2")
        }
    }

    @Test func paymentMethodsAndCardIssuers() async throws {
        try await ProviderTestServer.with({ request in
            if request.path == "/v1/payment_methods" {
                return .json(200, """
                    [{"id": "visa", "name": "Visa", "payment_type_id": "credit_card", "status": "active",
                      "secure_thumbnail": "https://www.mercadopago.com/org-img/MP3/API/logos/visa.gif", "thumbnail": "http://img/visa.gif",
                      "deferred_capture": "supported", "min_allowed_amount": 50, "max_allowed_amount": 60000000, "accreditation_time": 2880},
                     {"id": "oldcard", "name": "Old", "payment_type_id": "credit_card", "status": "deactive", "min_allowed_amount": 1, "max_allowed_amount": 2}]
                    """)
            }
            return .json(200, """
                [{"id": "310", "name": "Visa", "secure_thumbnail": "https://img/310.gif", "thumbnail": "http://img/310.gif",
                  "processing_mode": "aggregator", "merchant_account_id": null, "status": "active"}]
                """)
        }) { server, http in
            let client = Self.client(server.url, http)
            let methods = try await client.paymentMethods(logger: Self.logger)
            #expect(methods == [
                PaymentMethod(
                    id: "visa", name: "Visa", paymentTypeID: "credit_card", thumbnail: "http://img/visa.gif",
                    secureThumbnail: "https://www.mercadopago.com/org-img/MP3/API/logos/visa.gif", minAllowedAmount: 50, maxAllowedAmount: 60_000_000
                )
            ])
            let issuers = try await client.cardIssuers(paymentMethodID: "visa", logger: Self.logger)
            #expect(issuers == [CardIssuer(id: 310, name: "Visa", thumbnail: "http://img/310.gif", secureThumbnail: "https://img/310.gif")])
            #expect(server.received.map(\.path) == ["/v1/payment_methods", "/v1/payment_methods/card_issuers"])
            #expect(server.received[1].query == "payment_method_id=visa")
            #expect(server.received.allSatisfy { $0.header("Authorization") == "Bearer TEST-4491-access" && $0.method == "GET" })
        }
    }

    @Test func aRefusalCarriesMercadoPagosMessage() async throws {
        let reply = #"{"message": "Invalid card_token_id", "error": "bad_request", "status": 400, "cause": [{"code": 2006, "description": "Card Token not found", "data": null}]}"#
        try await ProviderTestServer.with({ _ in .json(400, reply) }) { server, http in
            let card = CardPayment(token: "expired", paymentMethodID: "visa", installments: 1, issuerID: nil)
            await #expect(throws: PaymentProviderError.rejectedByProvider(status: 400, message: "Invalid card_token_id (2006: Card Token not found)")) {
                try await Self.client(server.url, http).charge(Self.order(), card: card, logger: Self.logger)
            }
        }
        try await ProviderTestServer.with({ _ in .json(404, #"{"message": "Payment not found", "error": "not_found", "status": 404, "cause": []}"#) }) { server, http in
            await #expect(throws: PaymentProviderError.rejectedByProvider(status: 404, message: "Payment not found")) {
                try await Self.client(server.url, http).payment(id: "42", logger: Self.logger)
            }
        }
    }

    @Test func aServerErrorIsUnavailable() async throws {
        try await ProviderTestServer.with({ _ in .json(500, #"{"message": "internal_error", "error": "internal_server_error", "status": 500, "cause": []}"#) }) { server, http in
            await #expect(throws: PaymentProviderError.unavailable("MercadoPago answered 500")) {
                try await Self.client(server.url, http).payment(id: "1319531342", logger: Self.logger)
            }
            #expect(server.received.count == 1)
        }
        // Nothing listening at all.
        let http = HTTPClient.makeInternal()
        await #expect(throws: PaymentProviderError.unavailable("MercadoPago could not be reached")) {
            try await Self.client("http://127.0.0.1:\(try TestPorts.next())", http).paymentMethods(logger: Self.logger)
        }
        try await http.shutdown()
    }

    @Test func aServerThatNeverAnswersTimesOut() async throws {
        let silent = try SilentListener()
        let http = HTTPClient.makeInternal()
        let started = ContinuousClock.now
        await #expect(throws: PaymentProviderError.timedOut) {
            try await Self.client(silent.url, http, timeout: .seconds(1)).charge(
                Self.order(), card: CardPayment(token: "tok", paymentMethodID: "visa", installments: 1, issuerID: nil), logger: Self.logger
            )
        }
        #expect(ContinuousClock.now - started < .seconds(10))
        try await http.shutdown()
    }

    @Test func aPaymentIdThatIsNotMercadoPagosIsRefusedWithoutACall() async throws {
        try await ProviderTestServer.with({ _ in .json(200, Self.paymentJSON()) }) { server, http in
            for id in ["../users/me", "12?x=1", "", "abc"] {
                await #expect(throws: PaymentProviderError.self) { try await Self.client(server.url, http).payment(id: id, logger: Self.logger) }
            }
            #expect(server.received.isEmpty)
        }
    }

    @Test func configurationIsReadFromTheEnvironment() throws {
        #expect(try MercadoPagoConfig(settings: .variables([:])) == nil)
        let config = try #require(try MercadoPagoConfig(settings: .variables(["MERCADOPAGO_ACCESS_TOKEN": "APP_USR-1", "MERCADOPAGO_PUBLIC_KEY": "APP_USR-pk"])))
        #expect(config.apiURL == "https://api.mercadopago.com")
        #expect(config.publicKey == "APP_USR-pk")
        #expect(config.threeDSMode == "optional")
        #expect(try MercadoPagoConfig(settings: .variables(["MERCADOPAGO_ACCESS_TOKEN": "x", "MERCADOPAGO_API_URL": "http://127.0.0.1:9/"]))?.apiURL == "http://127.0.0.1:9")
        #expect(throws: (any Error).self) { try MercadoPagoConfig(settings: .variables(["MERCADOPAGO_ACCESS_TOKEN": "x", "MERCADOPAGO_THREE_DS_MODE": "sometimes"])) }
        #expect(throws: (any Error).self) { try MercadoPagoConfig(settings: .variables(["MERCADOPAGO_ACCESS_TOKEN": "x", "MERCADOPAGO_API_URL": "ftp://x"])) }
        #expect(MercadoPagoClient(config: config, http: HTTPClient.shared).isTestMode == false)
    }
}
