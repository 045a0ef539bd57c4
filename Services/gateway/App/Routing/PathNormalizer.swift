import Foundation

/// Canonical form of a request path, checked and forwarded by the gateway, so that
/// `/api/auth/%2e%2e/%2e%2e/internal/x` or `//internal` cannot sneak past the route rules.
enum PathNormalizer {
    /// Percent-decodes, merges repeated slashes and resolves `.`/`..`; nil for paths that cannot be
    /// made sane (bad escapes, NUL, backslashes, or `..` above the root).
    static func normalize(_ rawPath: String) -> String? {
        if isPlain(rawPath) { return rawPath }
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

    /// The common case, checked in one pass over the bytes: already canonical (no escapes, no empty,
    /// `.` or `..` segments, no backslash or NUL), so it needs no work.
    static func isPlain(_ path: String) -> Bool {
        // Over contiguous bytes: stepping a short (inline) string's UTF8View costs several times more.
        var path = path
        return path.withUTF8 { bytes in
            guard bytes.first == 0x2F else { return false }
            var previous: UInt8 = 0
            for byte in bytes {
                switch byte {
                case 0x25, 0x5C, 0x00: return false  // % \ NUL
                case 0x2F where previous == 0x2F: return false  // //
                case 0x2E where previous == 0x2F: return false  // a segment starting with '.'
                default: break
                }
                previous = byte
            }
            return true
        }
    }

    /// True for `/internal` and anything under it, whatever the case.
    static func isInternal(_ normalizedPath: String) -> Bool {
        let lower = normalizedPath.lowercased()
        return lower == "/internal" || lower.hasPrefix("/internal/")
    }

    /// The normalised path, percent-encoded again for the upstream request line.
    static func encodeForUpstream(_ normalizedPath: String) -> String {
        // Nearly every path needs no escaping; checking its bytes skips Foundation on the hot path.
        var path = normalizedPath
        if path.withUTF8({ $0.allSatisfy(keptAsIs) }) { return normalizedPath }
        return normalizedPath.addingPercentEncoding(withAllowedCharacters: upstreamAllowed) ?? normalizedPath
    }

    static let upstreamAllowed: CharacterSet = {
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove(charactersIn: "?#%;")
        return allowed
    }()

    /// ASCII bytes `upstreamAllowed` keeps as they are: unreserved characters, `/`, and the
    /// sub-delimiters RFC 3986 allows in a path apart from `;`. Bit n of the mask for byte n (0-63,
    /// 64-127), as `HTTPWire.isTokenByte`: a static table would be a lazy global, checked per byte.
    @inline(__always)
    static func keptAsIs(_ byte: UInt8) -> Bool {
        byte < 64 ? (0x27FF_FFD2_0000_0000 as UInt64) >> byte & 1 == 1 : byte < 128 && (0x47FF_FFFE_87FF_FFFF as UInt64) >> (byte - 64) & 1 == 1
    }
}
