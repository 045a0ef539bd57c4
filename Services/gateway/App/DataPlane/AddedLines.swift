import Foundation
import NIOCore

/// The header lines the gateway adds to every answer it gives or relays, after the answer's own
/// headers: the security headers, `X-Request-ID`, the rate-limit headers, then any CORS headers
/// and `Connection`. `GatewayResponseEncoder` writes them straight into the head's buffer: the
/// security headers as one pre-encoded block, the rate-limit values as digits, no intermediate
/// `String`s (formatting the five rate-limit values as strings was 3.5 % of the gateway's
/// instructions per request).
struct AddedLines {
    /// The security headers the answer carries already (an upstream's own values win).
    var securityPresent = SecurityHeaders.Set()
    var requestID: String
    var rateLimit: RateLimitLines?
    /// Anything else, as it is (CORS headers).
    var extra: [(String, String)] = []
    var connection: Connection = .none

    enum Connection {
        case none
        case close
        case keepAlive
    }

    /// Every security header, encoded once.
    static let securityBlock: [UInt8] = Array(SecurityHeaders.fields.map { "\($0.0): \($0.1)\r\n" }.joined().utf8)
    /// Each security header's line, for answers that carry some of them already.
    static let securityLines: [[UInt8]] = SecurityHeaders.fields.map { Array("\($0.0): \($0.1)\r\n".utf8) }

    var size: Int {
        var size = 0
        if securityPresent.isEmpty {
            size += Self.securityBlock.count
        } else {
            for (index, line) in Self.securityLines.enumerated() where !securityPresent.contains(index) { size += line.count }
        }
        size += "X-Request-ID: \r\n".utf8.count + requestID.utf8.count
        if let rateLimit { size += rateLimit.size }
        for (name, value) in extra { size += HeadEncoding.lineSize(name, value) }
        switch connection {
        case .none: break
        case .close: size += Self.close.utf8CodeUnitCount
        case .keepAlive: size += Self.keepAlive.utf8CodeUnitCount
        }
        return size
    }

    static let close: StaticString = "Connection: close\r\n"
    static let keepAlive: StaticString = "Connection: keep-alive\r\n"

    func copy(to out: inout UnsafeMutableRawPointer) {
        if securityPresent.isEmpty {
            HeadEncoding.copy(Self.securityBlock, to: &out)
        } else {
            for (index, line) in Self.securityLines.enumerated() where !securityPresent.contains(index) { HeadEncoding.copy(line, to: &out) }
        }
        HeadEncoding.copy("X-Request-ID: " as StaticString, to: &out)
        HeadEncoding.copy(requestID, to: &out)
        HeadEncoding.copy(HeadEncoding.crlf, to: &out)
        rateLimit?.copy(to: &out)
        for (name, value) in extra { HeadEncoding.copyLine(name, value, to: &out) }
        switch connection {
        case .none: break
        case .close: HeadEncoding.copy(Self.close, to: &out)
        case .keepAlive: HeadEncoding.copy(Self.keepAlive, to: &out)
        }
    }
}

/// The rate-limit header lines of one decision, exactly as `RateLimitHeaderValues` spells them,
/// written as bytes.
struct RateLimitLines {
    let decision: RateLimitDecision
    let policyName: String
    /// The draft's `t` (`RateLimitDecision.secondsToQuota`).
    let secondsToQuota: Int

    init(_ decision: RateLimitDecision, policyName: String, now: Date = Date()) {
        self.decision = decision
        self.policyName = policyName
        self.secondsToQuota = decision.secondsToQuota(now: now)
    }

    static let limitName: StaticString = "X-RateLimit-Limit: "
    static let remainingName: StaticString = "\r\nX-RateLimit-Remaining: "
    static let resetName: StaticString = "\r\nX-RateLimit-Reset: "
    static let policyLineName: StaticString = "\r\nRateLimit-Policy: "
    static let q: StaticString = ";q="
    static let w: StaticString = ";w="
    static let rateLimitName: StaticString = "\r\nRateLimit: "
    static let r: StaticString = ";r="
    static let t: StaticString = ";t="
    static let retryAfterName: StaticString = "\r\nRetry-After: "

    var size: Int {
        let name = Self.quotedSize(policyName)
        var size = Self.limitName.utf8CodeUnitCount + HeadEncoding.decimalSize(decision.limit)
        size += Self.remainingName.utf8CodeUnitCount + HeadEncoding.decimalSize(decision.remaining)
        size += Self.resetName.utf8CodeUnitCount + HeadEncoding.decimalSize(decision.resetAt)
        size += Self.policyLineName.utf8CodeUnitCount + name + 3 + HeadEncoding.decimalSize(decision.limit) + 3
            + HeadEncoding.decimalSize(decision.policyWindowSeconds)
        size += Self.rateLimitName.utf8CodeUnitCount + name + 3 + HeadEncoding.decimalSize(decision.remaining) + 3
            + HeadEncoding.decimalSize(secondsToQuota)
        if !decision.allowed { size += Self.retryAfterName.utf8CodeUnitCount + HeadEncoding.decimalSize(decision.retryAfter) }
        return size + 2
    }

    func copy(to out: inout UnsafeMutableRawPointer) {
        Self.copy(Self.limitName, decision.limit, to: &out)
        Self.copy(Self.remainingName, decision.remaining, to: &out)
        Self.copy(Self.resetName, decision.resetAt, to: &out)
        HeadEncoding.copy(Self.policyLineName, to: &out)
        Self.copyQuoted(policyName, to: &out)
        Self.copy(Self.q, decision.limit, to: &out)
        Self.copy(Self.w, decision.policyWindowSeconds, to: &out)
        HeadEncoding.copy(Self.rateLimitName, to: &out)
        Self.copyQuoted(policyName, to: &out)
        Self.copy(Self.r, decision.remaining, to: &out)
        Self.copy(Self.t, secondsToQuota, to: &out)
        if !decision.allowed { Self.copy(Self.retryAfterName, decision.retryAfter, to: &out) }
        HeadEncoding.copy(HeadEncoding.crlf, to: &out)
    }

    /// `prefix` then `value`'s digits.
    @inline(__always)
    private static func copy(_ prefix: StaticString, _ value: Int, to out: inout UnsafeMutableRawPointer) {
        HeadEncoding.copy(prefix, to: &out)
        HeadEncoding.copyDecimal(value, to: &out)
    }

    /// `RateLimitHeaderValues.structuredString` as bytes: quoted, `"` and `\` escaped, bytes
    /// outside printable ASCII (controls, every byte of a non-ASCII character) dropped.
    static func quotedSize(_ text: String) -> Int {
        var size = 2
        for byte in text.utf8 where byte >= 0x20 && byte <= 0x7e { size += byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") ? 2 : 1 }
        return size
    }

    static func copyQuoted(_ text: String, to out: inout UnsafeMutableRawPointer) {
        HeadEncoding.copy(UInt8(ascii: "\""), to: &out)
        for byte in text.utf8 where byte >= 0x20 && byte <= 0x7e {
            if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { HeadEncoding.copy(UInt8(ascii: "\\"), to: &out) }
            HeadEncoding.copy(byte, to: &out)
        }
        HeadEncoding.copy(UInt8(ascii: "\""), to: &out)
    }
}
