import Crypto
import Foundation
import HTTPTypes
import Logging
import PostgresNIO

/// MercadoPago's webhook signature, as MercadoPago documents it: the `x-signature` header is
/// `ts=<timestamp>,v1=<hex HMAC-SHA256>`, the HMAC keyed with the application's webhook secret over
/// the manifest `id:<data.id>;request-id:<x-request-id>;ts:<ts>;`, where `data.id` comes from the
/// notification URL's query string (lower-cased when alphanumeric). The sandbox provider signs its
/// own notifications with this same code, so the path a real notification takes is the one tested.
struct MercadoPagoWebhookSignature: Sendable {
    enum Failure: Error, Equatable {
        case missing(String)
        case malformed(String)
        case stale
        case mismatch
    }

    let secret: String
    /// How far `ts` may be from now, either way.
    let tolerance: TimeInterval

    /// The manifest MercadoPago signs.
    static func manifest(dataID: String, requestID: String, ts: String) -> String {
        "id:\(normalizedDataID(dataID));request-id:\(requestID);ts:\(ts);"
    }

    /// Alphanumeric ids are signed lower-cased.
    static func normalizedDataID(_ id: String) -> String {
        id.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) } ? id.lowercased() : id
    }

    func hexSignature(dataID: String, requestID: String, ts: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(
            for: Data(Self.manifest(dataID: dataID, requestID: requestID, ts: ts).utf8), using: SymmetricKey(data: Data(secret.utf8))
        )
        return mac.map { String(format: "%02x", $0) }.joined()
    }

    /// The `x-signature` header for a notification sent at `time`.
    func header(dataID: String, requestID: String, time: Date) -> String {
        let ts = String(Int64(time.timeIntervalSince1970))
        return "ts=\(ts),v1=\(hexSignature(dataID: dataID, requestID: requestID, ts: ts))"
    }

    /// Throws unless `header` signs `dataID` and `requestID` within the tolerance of `now`.
    func verify(header: String?, dataID: String?, requestID: String?, now: Date) throws(Failure) {
        guard let header, !header.isEmpty else { throw .missing("x-signature") }
        guard let requestID, !requestID.isEmpty else { throw .missing("x-request-id") }
        guard let dataID, !dataID.isEmpty else { throw .missing("data.id") }
        var ts: String?
        var signatures: [String] = []
        for part in header.split(separator: ",") {
            let pair = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard pair.count == 2 else { continue }
            switch pair[0] {
            case "ts": ts = pair[1]
            case "v1": signatures.append(pair[1].lowercased())
            default: continue
            }
        }
        guard let ts, let stamp = Int64(ts), !signatures.isEmpty else { throw .malformed("x-signature must be ts=…,v1=…") }
        // MercadoPago's examples show both seconds and milliseconds.
        let seconds = stamp > 100_000_000_000 ? TimeInterval(stamp) / 1_000 : TimeInterval(stamp)
        guard abs(now.timeIntervalSince1970 - seconds) <= tolerance else { throw .stale }
        let expected = Array(hexSignature(dataID: dataID, requestID: requestID, ts: ts).utf8)
        guard signatures.contains(where: { Self.constantTimeEqual(Array($0.utf8), expected) }) else { throw .mismatch }
    }

    /// Compares every byte whatever differs first, so timing tells nothing of the expected value.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}
