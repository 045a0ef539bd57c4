/// The proxies whose `X-Forwarded-For` entries the gateway believes, from the `TRUSTED_PROXIES` setting.
struct TrustedProxies: Sendable, CustomStringConvertible {
    /// A `TRUSTED_PROXIES` entry that is not an address or CIDR block; names the entry so the operator can fix it.
    struct InvalidEntry: Error, Equatable, CustomStringConvertible {
        let entry: String

        var description: String {
            "TRUSTED_PROXIES: '\(entry)' is not an IP address or CIDR block (expected e.g. 10.0.0.0/8, 127.0.0.1, fd00::/8)"
        }
    }

    /// Trusts no one: forwarding headers are ignored and the peer address is the client.
    static let none = TrustedProxies(networks: [])

    let networks: [IPNetwork]

    init(networks: [IPNetwork]) {
        self.networks = networks
    }

    /// Entries separated by commas and/or whitespace; an empty list trusts no one.
    init(parsing list: String) throws(InvalidEntry) {
        var networks: [IPNetwork] = []
        for entry in list.split(whereSeparator: { $0 == "," || $0.isWhitespace }) {
            guard let network = IPNetwork(entry) else { throw InvalidEntry(entry: String(entry)) }
            networks.append(network)
        }
        self.networks = networks
    }

    var isEmpty: Bool { networks.isEmpty }

    func contains(_ address: IPAddress) -> Bool {
        networks.contains { $0.contains(address) }
    }

    /// The blocks in canonical form, comma separated, for logging the effective setting at startup.
    var description: String { networks.map(\.description).joined(separator: ", ") }
}
