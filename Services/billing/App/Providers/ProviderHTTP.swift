import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// One HTTP exchange with a payment provider's API, shared by `MercadoPagoClient` and `StripeClient`:
/// a deadline per call, and the failures every provider has in common mapped to
/// `PaymentProviderError` (no answer in time → `.timedOut`; unreachable or 5xx → `.unavailable`).
/// A 4xx is handed back to the caller, whose provider documents its own error body.
struct ProviderHTTP: Sendable {
    /// The provider's name, for logs and messages (`MercadoPago`, `Stripe`).
    let provider: String
    let http: HTTPClient
    /// Without a trailing slash.
    let baseURL: String
    let timeout: TimeAmount

    struct Answer: Sendable {
        var status: Int
        var body: Data
    }

    /// Answers bigger than this are not a payment API's answer.
    static let maxAnswerBytes = 2 << 20

    /// Sends the request; a 2xx or a 4xx other than 429 comes back, anything else throws `PaymentProviderError`.
    func send(
        _ method: HTTPMethod, _ pathAndQuery: String, headers: [(String, String)], body: Data?, logger: Logger
    ) async throws -> Answer {
        var request = HTTPClientRequest(url: baseURL + pathAndQuery)
        request.method = method
        request.headers.add(name: "Accept", value: "application/json")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let answer: Answer
        do {
            let response = try await http.execute(request, timeout: timeout, logger: logger)
            let bytes = try await response.body.collect(upTo: Self.maxAnswerBytes)
            answer = Answer(status: Int(response.status.code), body: Data(bytes.readableBytesView))
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout {
            logger.warning("payment provider did not answer in time", metadata: ["provider": "\(provider)", "path": "\(Self.pathOnly(pathAndQuery))"])
            throw PaymentProviderError.timedOut
        } catch {
            logger.warning(
                "payment provider unreachable", metadata: ["provider": "\(provider)", "path": "\(Self.pathOnly(pathAndQuery))", "error": "\(error)"]
            )
            throw PaymentProviderError.unavailable("\(provider) could not be reached")
        }
        logger.debug(
            "payment provider answered",
            metadata: [
                "provider": "\(provider)", "method": "\(method.rawValue)", "path": "\(Self.pathOnly(pathAndQuery))",
                "status": "\(answer.status)",
            ]
        )
        switch answer.status {
        // 429 asks to come back later: the provider is there but not serving this call now.
        case 200..<300, 400..<429, 430..<500: return answer
        default:
            logger.warning("payment provider failed", metadata: ["provider": "\(provider)", "status": "\(answer.status)"])
            throw PaymentProviderError.unavailable("\(provider) answered \(answer.status)")
        }
    }

    /// Decodes a 2xx answer; an answer that is not what the provider documents is `.unavailable`
    /// (the call may have had its effect, so it is never taken as a refusal).
    func decode<T: Decodable>(_ type: T.Type, from answer: Answer, logger: Logger) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: answer.body)
        } catch {
            logger.error("payment provider sent an unreadable answer", metadata: ["provider": "\(provider)", "error": "\(error)"])
            throw PaymentProviderError.unavailable("\(provider) sent an answer billing cannot read")
        }
    }

    /// Percent-encodes all but RFC 3986's unreserved characters, for a path segment, query value or form field.
    static func escape(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: unreserved) ?? ""
    }

    private static let unreserved = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~")

    /// Never log query strings: they can carry ids a log should not keep.
    private static func pathOnly(_ pathAndQuery: String) -> Substring {
        pathAndQuery.split(separator: "?", maxSplits: 1).first ?? ""
    }
}

/// Money ↔ the decimal amounts of providers that write major units (MercadoPago's `19990`,
/// `1234.5`), exactly: through `Decimal`, whose digits are base 10, never through `Double`.
enum MajorUnits {
    /// ISO 4217 currencies without a minor unit; every other currency has two decimals here.
    static let zeroDecimalCurrencies: Set<String> = [
        "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF",
    ]

    static func decimals(of currency: String) -> Int16 {
        zeroDecimalCurrencies.contains(currency.uppercased()) ? 0 : 2
    }

    /// `Money(1_234_50, "BRL")` → 1234.5; `Money(19_990, "CLP")` → 19990.
    static func amount(_ money: Money) -> Decimal {
        Decimal(sign: money.minorUnits < 0 ? .minus : .plus, exponent: -Int(decimals(of: money.currency)), significand: Decimal(money.minorUnits.magnitude))
    }

    /// The amount in minor units; nil when it has more decimals than the currency has, or does
    /// not fit, so a malformed amount is refused instead of rounded.
    static func money(_ amount: Decimal, currency: String) -> Money? {
        var scaled = amount
        for _ in 0..<decimals(of: currency) { scaled *= 10 }
        var rounded = Decimal()
        NSDecimalRound(&rounded, &scaled, 0, .plain)
        guard rounded == scaled, let minor = Int64(rounded.description) else { return nil }
        return Money(minorUnits: minor, currency: currency.uppercased())
    }
}
