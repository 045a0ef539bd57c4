/// An IPv4 or IPv6 address, parsed strictly from text and printed canonically.
///
/// IPv4 addresses are held as their IPv4-mapped IPv6 form (`::ffff:a.b.c.d`), so `::ffff:10.1.2.3` and `10.1.2.3`
/// are the same value, and both families compare and mask alike. Parsing accepts only plain addresses: no ports,
/// brackets, zone ids (`%eth0`), surrounding spaces, or IPv4 octets with leading zeros (which `inet_aton` would
/// read as octal), so one address has few spellings and garbage is never mistaken for one.
struct IPAddress: Hashable, Sendable, CustomStringConvertible {
    private static let ipv4MappedPrefix: UInt128 = 0xffff_0000_0000
    /// Longest textual address: `ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255`; anything longer is rejected unread.
    private static let maxTextLength = 45

    /// The address's 128 bits, most significant first.
    let bits: UInt128

    init(bits: UInt128) {
        self.bits = bits
    }

    init(ipv4: UInt32) {
        self.bits = Self.ipv4MappedPrefix | UInt128(ipv4)
    }

    init?(_ text: some StringProtocol) {
        let bytes = text.utf8
        guard bytes.count <= Self.maxTextLength else { return nil }
        if bytes.contains(UInt8(ascii: ":")) {
            guard let bits = Self.parseIPv6(bytes) else { return nil }
            self.init(bits: bits)
        } else {
            guard let ipv4 = Self.parseIPv4(bytes) else { return nil }
            self.init(ipv4: ipv4)
        }
    }

    var isIPv4: Bool { bits >> 32 == Self.ipv4MappedPrefix >> 32 }

    /// The address with all but the first `length` bits cleared (`length` counts IPv6 bits, 0...128).
    func masked(toPrefixLength length: Int) -> IPAddress {
        IPAddress(bits: bits & ~(UInt128.max >> length))
    }

    /// Dotted quad for IPv4 (mapped addresses included); RFC 5952 form for IPv6: lower case, no leading zeros, the
    /// longest run of two or more zero groups (the first, on a tie) written as `::`.
    var description: String {
        if isIPv4 {
            let value = UInt32(truncatingIfNeeded: bits)
            return "\(value >> 24).\(value >> 16 & 0xff).\(value >> 8 & 0xff).\(value & 0xff)"
        }
        let groups = (0..<8).map { UInt16(truncatingIfNeeded: bits >> (112 - 16 * $0)) }
        var run = (start: 0, length: 0)
        var index = 0
        while index < 8 {
            var end = index
            while end < 8, groups[end] == 0 { end += 1 }
            if end - index > run.length { run = (index, end - index) }
            index = end + 1
        }
        func hex(_ range: Range<Int>) -> String { groups[range].map { String($0, radix: 16) }.joined(separator: ":") }
        guard run.length >= 2 else { return hex(0..<8) }
        return hex(0..<run.start) + "::" + hex((run.start + run.length)..<8)
    }

    /// Dotted-quad IPv4: four decimal octets, each 0...255 without leading zeros.
    private static func parseIPv4(_ bytes: some Collection<UInt8>) -> UInt32? {
        var value: UInt32 = 0
        var octet: UInt32 = 0
        var digits = 0
        var dots = 0
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                guard digits == 0 || octet != 0 else { return nil }
                octet = octet * 10 + UInt32(byte - UInt8(ascii: "0"))
                digits += 1
                guard octet <= 255 else { return nil }
            case UInt8(ascii: "."):
                guard digits > 0, dots < 3 else { return nil }
                value = value << 8 | octet
                octet = 0
                digits = 0
                dots += 1
            default:
                return nil
            }
        }
        guard digits > 0, dots == 3 else { return nil }
        return value << 8 | octet
    }

    /// RFC 4291 text: eight groups of one to four hex digits, at most one `::`, optionally ending in a dotted quad.
    private static func parseIPv6<Bytes: Collection<UInt8>>(_ bytes: Bytes) -> UInt128? {
        let colon = UInt8(ascii: ":")
        // Groups before `::` go to `head`, groups after it to `tail`; `::` stands for the zeros in between.
        var head: UInt128 = 0
        var headCount = 0
        var tail: UInt128 = 0
        var tailCount = 0
        var compressed = false
        func append(_ group: UInt128) {
            if compressed {
                tail = tail << 16 | group
                tailCount += 1
            } else {
                head = head << 16 | group
                headCount += 1
            }
        }

        var index = bytes.startIndex
        if bytes.first == colon {
            index = bytes.index(after: index)
            guard index != bytes.endIndex, bytes[index] == colon else { return nil }
            index = bytes.index(after: index)
            compressed = true
        }
        while index != bytes.endIndex {
            let groupStart = index
            var group: UInt128 = 0
            var digits = 0
            while index != bytes.endIndex, let digit = hexDigit(bytes[index]) {
                group = group << 4 | UInt128(digit)
                digits += 1
                guard digits <= 4 else { return nil }
                index = bytes.index(after: index)
            }
            if index != bytes.endIndex, bytes[index] == UInt8(ascii: ".") {
                // A dotted quad fills the last two groups and must end the address.
                guard let ipv4 = parseIPv4(bytes[groupStart...]) else { return nil }
                append(UInt128(ipv4 >> 16))
                append(UInt128(ipv4 & 0xffff))
                break
            }
            guard digits > 0 else { return nil }
            append(group)
            guard headCount + tailCount <= 8 else { return nil }
            guard index != bytes.endIndex else { break }
            guard bytes[index] == colon else { return nil }
            index = bytes.index(after: index)
            guard index != bytes.endIndex else { return nil }
            if bytes[index] == colon {
                guard !compressed else { return nil }
                compressed = true
                index = bytes.index(after: index)
            }
        }
        let groupCount = headCount + tailCount
        guard compressed ? groupCount <= 7 : groupCount == 8 else { return nil }
        return head << (16 * (8 - headCount)) | tail
    }

    private static func hexDigit(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
