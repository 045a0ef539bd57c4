import Foundation

/// Canonical form of a request path, checked and forwarded by the gateway, so that
/// `/api/auth/%2e%2e/%2e%2e/internal/x` or `//internal` cannot sneak past the route rules.
enum PathNormalizer {
    /// Percent-decodes, merges repeated slashes and resolves `.`/`..`; nil for paths that cannot be
    /// made sane (bad escapes, NUL, backslashes, or `..` above the root).
    static func normalize(_ rawPath: String) -> String? {
        guard rawPath.hasPrefix("/"), let decoded = rawPath.removingPercentEncoding else { return nil }
        if decoded.contains("\0") || decoded.contains("\\") || decoded.contains("%") && decoded.removingPercentEncoding != decoded {
            return nil
        }
        var segments: [Substring] = []
        for segment in decoded.split(separator: "/", omittingEmptySubsequences: true) {
            switch segment {
            case ".": continue
            case "..":
                guard !segments.isEmpty else { return nil }
                segments.removeLast()
            default: segments.append(segment)
            }
        }
        let joined = "/" + segments.joined(separator: "/")
        return decoded.hasSuffix("/") && joined != "/" ? joined + "/" : joined
    }

    /// True for `/internal` and anything under it, whatever the case.
    static func isInternal(_ normalizedPath: String) -> Bool {
        let lower = normalizedPath.lowercased()
        return lower == "/internal" || lower.hasPrefix("/internal/")
    }

    /// The normalised path, percent-encoded again for the upstream request line.
    static func encodeForUpstream(_ normalizedPath: String) -> String {
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove(charactersIn: "?#%;")
        return normalizedPath.addingPercentEncoding(withAllowedCharacters: allowed) ?? normalizedPath
    }
}
