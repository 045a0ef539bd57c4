import Crypto
import Foundation
import HTTPTypes
import ServiceCore

/// Verifies Stripe's `Stripe-Signature` header as Stripe documents it: `t=<unix seconds>` and one
/// or more `v1=<hex>` (also `v0=` from test tools, ignored), where each `v1` is the HMAC-SHA256, keyed
/// with the endpoint's whole `whsec_…` secret, of `"{t}.{raw body}"`. Any `v1` may match (Stripe
/// sends one per active secret while a secret is being rolled); the comparison is constant-time;
/// `t` must lie within `tolerance` seconds of now, so a captured request cannot be replayed later.
struct StripeSignature: Sendable {
    static let defaultTolerance = 300

    enum Failure: Error, Equatable, CustomStringConvertible {
        case missingHeader
        /// Not `key=value` pairs, or no single integer `t`.
        case malformedHeader
        case noV1Signature
        case noMatchingSignature
        case timestampOutsideTolerance

        var description: String {
            switch self {
            case .missingHeader: "no Stripe-Signature header"
            case .malformedHeader: "the Stripe-Signature header is not t=…,v1=…"
            case .noV1Signature: "the Stripe-Signature header has no v1 signature"
            case .noMatchingSignature: "no v1 signature matches the body"
            case .timestampOutsideTolerance: "the signature's timestamp is too far from now"
            }
        }
    }

    let secret: String
    let tolerance: TimeInterval
    let now: @Sendable () -> Date

    init(secret: String, tolerance: Int = Self.defaultTolerance, now: @escaping @Sendable () -> Date = { Date() }) {
        self.secret = secret
        self.tolerance = TimeInterval(tolerance)
        self.now = now
    }

    /// Checks `header` against the raw request body, byte for byte as received (never re-encoded
    /// JSON); answers the signature's timestamp.
    @discardableResult
    func verify(payload: some DataProtocol, header: String?) throws(Failure) -> Date {
        guard let header, !header.isEmpty else { throw .missingHeader }
        var timestamps: [Int64] = []
        var signatures: [Data] = []
        for item in header.split(separator: ",", omittingEmptySubsequences: false) {
            let pair = item.trimmingCharacters(in: .whitespaces)
            guard let equals = pair.firstIndex(of: "=") else { throw .malformedHeader }
            let key = pair[..<equals]
            let value = pair[pair.index(after: equals)...]
            switch key {
            case "t":
                guard let seconds = Int64(value), seconds >= 0 else { throw .malformedHeader }
                timestamps.append(seconds)
            case "v1":
                // A v1 that is not 64 hex digits can match nothing; it is skipped, not fatal.
                if let bytes = Self.hexBytes(value), bytes.count == SHA256.byteCount { signatures.append(bytes) }
            default:
                continue  // v0 and any scheme added later
            }
        }
        guard timestamps.count == 1, let timestamp = timestamps.first else { throw .malformedHeader }
        guard !signatures.isEmpty else { throw header.contains("v1=") ? .noMatchingSignature : .noV1Signature }

        var signed = Data("\(timestamp).".utf8)
        signed.append(contentsOf: payload)
        let key = SymmetricKey(data: Data(secret.utf8))
        // Every candidate is checked, so the time taken does not tell which one matched.
        var matched = false
        for signature in signatures {
            matched = HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: signed, using: key) || matched
        }
        guard matched else { throw .noMatchingSignature }
        let signedAt = Date(timeIntervalSince1970: TimeInterval(timestamp))
        guard abs(now().timeIntervalSince(signedAt)) <= tolerance else { throw .timestampOutsideTolerance }
        return signedAt
    }

    /// The header Stripe would send for `payload` at `timestamp`: `t=…,v1=…`. For tests and the sandbox.
    static func header(payload: some DataProtocol, secret: String, timestamp: Int64) -> String {
        var signed = Data("\(timestamp).".utf8)
        signed.append(contentsOf: payload)
        let code = HMAC<SHA256>.authenticationCode(for: signed, using: SymmetricKey(data: Data(secret.utf8)))
        return "t=\(timestamp),v1=\(code.map { String(format: "%02x", $0) }.joined())"
    }

    private static func hexBytes(_ text: Substring) -> Data? {
        guard text.count % 2 == 0, text.allSatisfy(\.isHexDigit) else { return nil }
        var bytes = Data(capacity: text.count / 2)
        var index = text.startIndex
        while index < text.endIndex {
            let next = text.index(index, offsetBy: 2)
            guard let byte = UInt8(text[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        return bytes
    }
}

extension StripeSignature.Failure {
    /// What Stripe's webhook endpoint answers: 400, nothing applied. Stripe retries a non-2xx
    /// delivery with backoff, so a request that does not verify is never acknowledged.
    var appError: AppError {
        AppError(.badRequest, code: "INVALID_WEBHOOK_SIGNATURE", detail: "The Stripe-Signature header does not verify: \(description)")
    }
}
