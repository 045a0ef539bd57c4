/// A CIDR block such as `10.0.0.0/8` or `fd00::/8`, for matching addresses against a configured list.
///
/// IPv4 blocks are held as the matching block of IPv4-mapped IPv6 addresses (`10.0.0.0/8` is `::ffff:10.0.0.0/104`),
/// so a mapped peer address matches an IPv4 entry. It follows that an IPv6 block covering `::ffff:0:0/96`, such as
/// `::/0`, also covers every IPv4 address.
struct IPNetwork: Hashable, Sendable, CustomStringConvertible {
    /// The first address of the block: host bits written in the text (`10.1.2.3/8`) are cleared, as nginx does.
    let address: IPAddress
    /// Prefix length in IPv6 bits, 0...128.
    let prefixLength: Int

    init(address: IPAddress, prefixLength: Int) {
        self.address = address.masked(toPrefixLength: prefixLength)
        self.prefixLength = prefixLength
    }

    /// `address` or `address/length`; a bare address is a single-address block (/32 or /128). The length is checked
    /// against the family the text is written in, so `::ffff:10.0.0.0/104` and `10.0.0.0/8` are the same block.
    init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(parts[0]) else { return nil }
        let writtenAsIPv6 = parts[0].contains(":")
        let familyBits = writtenAsIPv6 ? 128 : 32
        var length = familyBits
        if parts.count == 2 {
            let digits = parts[1]
            guard (1...3).contains(digits.count), digits.allSatisfy({ $0.isASCII && $0.isWholeNumber }),
                let written = Int(digits), written <= familyBits
            else { return nil }
            length = written
        }
        self.init(address: address, prefixLength: writtenAsIPv6 ? length : 96 + length)
    }

    func contains(_ candidate: IPAddress) -> Bool {
        candidate.masked(toPrefixLength: prefixLength) == address
    }

    /// IPv4 notation when the block lies within the IPv4-mapped range, IPv6 notation otherwise.
    var description: String {
        address.isIPv4 && prefixLength >= 96 ? "\(address)/\(prefixLength - 96)" : "\(address)/\(prefixLength)"
    }
}
