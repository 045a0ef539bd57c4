import Testing

@testable import GatewayApp

@Suite struct TrustedProxiesTests {
    private func network(_ text: String) throws -> IPNetwork { try #require(IPNetwork(text)) }
    private func address(_ text: String) throws -> IPAddress { try #require(IPAddress(text)) }

    @Test func parsesTheDocumentedExample() throws {
        let trusted = try TrustedProxies(parsing: "10.0.0.0/8, 127.0.0.1/32, ::1/128, fd00::/8")
        #expect(trusted.description == "10.0.0.0/8, 127.0.0.1/32, ::1/128, fd00::/8")
        #expect(try trusted.contains(address("10.200.3.4")))
        #expect(try trusted.contains(address("::ffff:10.200.3.4")))
        #expect(try trusted.contains(address("127.0.0.1")))
        #expect(try trusted.contains(address("::1")))
        #expect(try trusted.contains(address("fdab:1::9")))
        #expect(try !trusted.contains(address("11.0.0.1")))
        #expect(try !trusted.contains(address("127.0.0.2")))
        #expect(try !trusted.contains(address("fe00::1")))
    }

    @Test func separatorsAndEmptyLists() throws {
        #expect(try TrustedProxies(parsing: " 10.0.0.1,10.0.0.2\t10.0.0.3 ,, \n10.0.0.4 ").networks.count == 4)
        #expect(try TrustedProxies(parsing: "").isEmpty)
        #expect(try TrustedProxies(parsing: " , ").isEmpty)
        #expect(TrustedProxies.none.isEmpty)
    }

    @Test(arguments: [
        "10.0.0.0/8, bogus", "10.0.0.0/33", "::/129", "256.1.1.1", "10.0.0.0/", "10.0.0.0/-1", "/8", "10.0.0.0/8/8", "10.0.0.0/+8",
        "1.2.3.4:80",
    ])
    func aBadEntryIsNamedInTheError(list: String) {
        let bad = list.split(separator: ",").last.map { String($0.drop { $0 == " " }) } ?? list
        #expect(throws: TrustedProxies.InvalidEntry(entry: bad)) { try TrustedProxies(parsing: list) }
        #expect(TrustedProxies.InvalidEntry(entry: bad).description.contains("'\(bad)'"))
    }

    @Test func bareAddressesAreSingleAddressBlocks() throws {
        #expect(try network("192.0.2.7").description == "192.0.2.7/32")
        #expect(try network("2001:db8::7").description == "2001:db8::7/128")
        #expect(try network("192.0.2.7").contains(address("192.0.2.7")))
        #expect(try !network("192.0.2.7").contains(address("192.0.2.8")))
        #expect(try network("2001:db8::7/128").contains(address("2001:db8::7")))
        #expect(try !network("2001:db8::7/128").contains(address("2001:db8::8")))
    }

    @Test func prefixBoundaries() throws {
        #expect(try network("0.0.0.0/0").contains(address("203.0.113.9")))
        #expect(try !network("0.0.0.0/0").contains(address("2001:db8::1")), "an IPv4 block holds no IPv6 address")
        #expect(try network("::/0").contains(address("2001:db8::1")))
        #expect(try network("::/0").contains(address("203.0.113.9")), "::/0 covers the IPv4-mapped range too")
        #expect(try network("10.0.0.0/8").contains(address("10.255.255.255")))
        #expect(try !network("10.0.0.0/8").contains(address("11.0.0.0")))
        #expect(try !network("10.0.0.0/8").contains(address("9.255.255.255")))
        #expect(try network("192.168.1.128/25").contains(address("192.168.1.255")))
        #expect(try !network("192.168.1.128/25").contains(address("192.168.1.127")))
        #expect(try network("2001:db8::/32").contains(address("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff")))
        #expect(try !network("2001:db8::/32").contains(address("2001:db9::")))
    }

    @Test func hostBitsAreCleared() throws {
        #expect(try network("10.1.2.3/8").description == "10.0.0.0/8")
        #expect(try network("2001:db8::1/32").description == "2001:db8::/32")
    }

    @Test func mappedBlocksEqualTheirIPv4Form() throws {
        #expect(try network("::ffff:10.0.0.0/104") == network("10.0.0.0/8"))
        #expect(try network("::ffff:10.0.0.0/104").contains(address("10.9.9.9")))
    }
}
