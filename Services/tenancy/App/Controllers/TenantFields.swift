import Foundation
import ServiceCore

/// The rules for a tenant's administered fields, shared by creation and update. Each reads the
/// raw value, adds what is wrong to `problems` (answered together as 422) and returns the value
/// to store.
enum TenantFields {
    static let nameLimit = 100
    static let originsLimit = 50
    static let rateLimitRange = 1...1_000_000
    static let quotaRange = 0...100_000_000

    static func name(_ raw: String?, problems: inout [String: [String]]) -> String? {
        guard let raw else { return nil }
        // The limit counts what was sent, as the schema's `maxLength` does; the name kept is trimmed.
        let name = raw.trimmingCharacters(in: .whitespacesAndNewlines)
        if raw.unicodeScalars.count > nameLimit {
            problems["name"] = ["must be at most \(nameLimit) characters"]
        } else if name.isEmpty {
            problems["name"] = ["must not be empty"]
        } else if name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            problems["name"] = ["must not contain line breaks or control characters"]
        } else {
            return name
        }
        return nil
    }

    static func status(_ raw: String?, problems: inout [String: [String]]) -> TenantStatus? {
        guard let raw else { return nil }
        guard let status = TenantStatus(rawValue: raw) else {
            problems["status"] = ["must be one of \(TenantStatus.names)"]
            return nil
        }
        return status
    }

    static func allowedOrigins(_ raw: [String]?, problems: inout [String: [String]]) -> [String]? {
        guard let raw else { return nil }
        guard raw.count <= originsLimit else {
            problems["allowed_origins"] = ["must list at most \(originsLimit) origins"]
            return nil
        }
        var origins: [String] = []
        for value in raw {
            guard let origin = origin(value) else {
                problems["allowed_origins"] = [
                    "each must be an origin, https://host or https://host:port (http only for localhost), without path; '\(value.prefix(80))' is not"
                ]
                return nil
            }
            if !origins.contains(origin) { origins.append(origin) }
        }
        return origins
    }

    static func rateLimit(_ raw: Int?, problems: inout [String: [String]]) -> Int? {
        bounded(raw, rateLimitRange, field: "rate_limit_per_minute", problems: &problems)
    }

    static func quota(_ raw: Int?, problems: inout [String: [String]]) -> Int? {
        bounded(raw, quotaRange, field: "monthly_message_quota", problems: &problems)
    }

    private static func bounded(_ raw: Int?, _ range: ClosedRange<Int>, field: String, problems: inout [String: [String]]) -> Int? {
        guard let raw else { return nil }
        guard range.contains(raw) else {
            problems[field] = ["must be \(range.lowerBound) to \(range.upperBound)"]
            return nil
        }
        return raw
    }

    /// A web origin as a browser sends it in `Origin` (`https://shop.example.com`, `https://x.io:8443`),
    /// lower-cased and without the scheme's default port; nil for anything else. Plain `http` only
    /// for `localhost` and `127.0.0.1`, where a widget is tried out before it goes live.
    static func origin(_ raw: String) -> String? {
        // ASCII only, checked before lower-casing (which maps a few other letters to ASCII ones).
        guard raw.utf8.count <= 300, raw.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return nil }
        let lower = raw.lowercased()
        let secure = lower.hasPrefix("https://")
        guard secure || lower.hasPrefix("http://") else { return nil }
        let rest = lower.dropFirst(secure ? 8 : 7)
        let parts = rest.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        let host = parts[0]
        guard host.split(separator: ".", omittingEmptySubsequences: false).allSatisfy(isHostLabel) else { return nil }
        var port: Int?
        if parts.count == 2 {
            guard (1...5).contains(parts[1].count), parts[1].first != "0", parts[1].utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                let value = Int(parts[1]), (1...65_535).contains(value)
            else { return nil }
            port = value == (secure ? 443 : 80) ? nil : value
        }
        guard secure || host == "localhost" || host == "127.0.0.1" else { return nil }
        return (secure ? "https://" : "http://") + host + (port.map { ":\($0)" } ?? "")
    }

    private static func isHostLabel(_ label: Substring) -> Bool {
        (1...63).contains(label.utf8.count) && label.first != "-" && label.last != "-"
            && label.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D }
    }
}
