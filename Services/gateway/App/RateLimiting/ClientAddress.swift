/// Works out which address a request came from, believing `X-Forwarded-For` only as far as trusted proxies vouch
/// for it, and turns that address into a rate-limiter key.
enum ClientAddress {
    /// Stands for a peer with no IP address (a Unix-domain socket); such a peer is never trusted.
    static let unknown = "unknown"

    /// The client's address in canonical form (see `IPAddress.description`).
    ///
    /// `peer` is the connection's remote IP address as plain text (`1.2.3.4`, `::1`, `::ffff:1.2.3.4`; no port or
    /// brackets, as `SocketAddress.ipAddress` gives it). `forwardedFor` holds every `X-Forwarded-For` field value in
    /// the order received. Only a trusted peer's header is read; it is walked right to left, as nginx does with
    /// `real_ip_recursive on`, skipping trusted hops: the first untrusted hop is the client, since everything left of
    /// it was written by the client itself. If every hop is trusted, the left-most one is the client. A malformed
    /// hop stops the walk and the last good hop wins, so text the client made up never becomes a limiter key.
    static func resolve(peer: String?, forwardedFor: [String], trusted: TrustedProxies) -> String {
        guard let peer else { return unknown }
        guard let peerAddress = IPAddress(peer) else { return peer }
        var client = peerAddress
        guard trusted.contains(client) else { return client.description }
        walk: for line in forwardedFor.reversed() {
            var unread = line[...]
            while true {
                let comma = unread.lastIndex(of: ",")
                let entry = trimmed(comma.map { unread[unread.index(after: $0)...] } ?? unread)
                // Empty list elements ("a,,b", a trailing comma) carry nothing; RFC 9110 says to ignore them.
                if !entry.isEmpty {
                    guard let hop = hopAddress(entry) else { break walk }
                    client = hop
                    guard trusted.contains(hop) else { break walk }
                }
                guard let comma else { break }
                unread = unread[..<comma]
            }
        }
        return client.description
    }

    /// The key the limiter counts an address under: IPv4 (mapped IPv6 included) as is, IPv6 as its /64 prefix
    /// (`2001:db8::/64`), because one subscriber is usually handed a whole /64 and could otherwise rotate through
    /// billions of addresses. Text that is not an address (`unknown`) is returned unchanged.
    static func limiterKey(for address: String) -> String {
        guard let parsed = IPAddress(address) else { return address }
        return parsed.isIPv4 ? parsed.description : "\(parsed.masked(toPrefixLength: 64))/64"
    }

    /// One `X-Forwarded-For` entry: a plain address, `1.2.3.4:port`, or `[v6]` with an optional `:port`.
    static func hopAddress(_ entry: Substring) -> IPAddress? {
        if entry.first == "[" {
            guard let close = entry.firstIndex(of: "]") else { return nil }
            let inside = entry[entry.index(after: entry.startIndex)..<close]
            let afterBracket = entry[entry.index(after: close)...]
            guard inside.contains(":"), afterBracket.isEmpty || isPortSuffix(afterBracket) else { return nil }
            return IPAddress(inside)
        }
        // Exactly one colon can only be IPv4 with a port: every IPv6 text has at least two.
        if let colon = entry.firstIndex(of: ":"), !entry[entry.index(after: colon)...].contains(":") {
            guard isPortSuffix(entry[colon...]) else { return nil }
            return IPAddress(entry[..<colon])
        }
        return IPAddress(entry)
    }

    /// `:` followed by a port number, 0...65535.
    private static func isPortSuffix(_ text: Substring) -> Bool {
        let digits = text.dropFirst()
        guard text.first == ":", (1...5).contains(digits.count), digits.allSatisfy({ $0.isASCII && $0.isWholeNumber }),
            let port = Int(digits)
        else { return false }
        return port <= 65_535
    }

    /// Without the optional whitespace HTTP allows around list elements.
    private static func trimmed(_ text: Substring) -> Substring {
        let isBlank = { (character: Character) in character == " " || character == "\t" }
        guard let first = text.firstIndex(where: { !isBlank($0) }), let last = text.lastIndex(where: { !isBlank($0) }) else {
            return ""
        }
        return text[first...last]
    }
}
