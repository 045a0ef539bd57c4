import Testing

@testable import GatewayApp

@Suite struct ClientAddressTests {
    private let proxies: TrustedProxies

    init() throws {
        proxies = try TrustedProxies(parsing: "10.0.0.0/8, 127.0.0.1, ::1, fd00::/8")
    }

    private func resolve(peer: String?, _ forwardedFor: [String]) -> String {
        ClientAddress.resolve(peer: peer, forwardedFor: forwardedFor, trusted: proxies)
    }

    @Test func anUntrustedPeerIsTheClientWhateverItForwards() {
        #expect(resolve(peer: "203.0.113.5", ["198.51.100.1"]) == "203.0.113.5")
        #expect(resolve(peer: "203.0.113.5", ["10.0.0.1", "127.0.0.1"]) == "203.0.113.5")
        #expect(ClientAddress.resolve(peer: "10.0.0.2", forwardedFor: ["198.51.100.1"], trusted: .none) == "10.0.0.2")
    }

    @Test func aTrustedPeerVouchesForTheHopItSaw() {
        #expect(resolve(peer: "10.0.0.2", ["198.51.100.1"]) == "198.51.100.1")
        #expect(resolve(peer: "10.0.0.2", []) == "10.0.0.2")
    }

    @Test func entriesTheClientWroteItselfAreIgnored() {
        // The client sent "X-Forwarded-For: 1.1.1.1"; the trusted proxy appended the address it really saw.
        #expect(resolve(peer: "10.0.0.2", ["1.1.1.1, 198.51.100.1"]) == "198.51.100.1")
        #expect(resolve(peer: "10.0.0.2", ["127.0.0.1, 198.51.100.1"]) == "198.51.100.1")
    }

    @Test func aChainOfTrustedProxiesIsSkipped() {
        #expect(resolve(peer: "10.0.0.2", ["1.1.1.1, 198.51.100.1, 10.3.3.3, 10.2.2.2"]) == "198.51.100.1")
        #expect(resolve(peer: "::1", ["198.51.100.1, fd00::7"]) == "198.51.100.1")
    }

    @Test func whenEveryHopIsTrustedTheLeftMostWins() {
        #expect(resolve(peer: "10.0.0.2", ["10.9.9.9, 10.3.3.3"]) == "10.9.9.9")
    }

    @Test func multipleHeaderLinesFormOneList() {
        #expect(resolve(peer: "10.0.0.2", ["1.1.1.1", "198.51.100.1, 10.3.3.3", "10.2.2.2"]) == "198.51.100.1")
        #expect(resolve(peer: "10.0.0.2", ["198.51.100.1", "10.3.3.3"]) == "198.51.100.1")
        #expect(resolve(peer: "10.0.0.2", ["", "10.3.3.3"]) == "10.3.3.3")
    }

    @Test func aMalformedHopStopsTheWalkAtTheLastGoodHop() {
        #expect(resolve(peer: "10.0.0.2", ["unknown"]) == "10.0.0.2")
        #expect(resolve(peer: "10.0.0.2", ["198.51.100.1, garbage, 10.3.3.3"]) == "10.3.3.3")
        #expect(resolve(peer: "10.0.0.2", ["198.51.100.1, 999.1.1.1"]) == "10.0.0.2")
        #expect(resolve(peer: "10.0.0.2", ["198.51.100.1, \"10.3.3.3\""]) == "10.0.0.2")
        #expect(resolve(peer: "10.0.0.2", ["198.51.100.1, 1.2.3.4:99999"]) == "10.0.0.2")
        #expect(resolve(peer: "10.0.0.2", ["198.51.100.1, [::1"]) == "10.0.0.2")
        #expect(resolve(peer: "10.0.0.2", ["198.51.100.1, [1.2.3.4]"]) == "10.0.0.2")
    }

    @Test func emptyElementsAndWhitespaceAreTolerated() {
        #expect(resolve(peer: "10.0.0.2", [" 198.51.100.1 ,, \t10.3.3.3\t, "]) == "198.51.100.1")
    }

    @Test func portsAreStripped() {
        #expect(resolve(peer: "10.0.0.2", ["198.51.100.1:5678"]) == "198.51.100.1")
        #expect(resolve(peer: "10.0.0.2", ["[2001:db8::1]:443"]) == "2001:db8::1")
        #expect(resolve(peer: "10.0.0.2", ["[2001:db8::1]"]) == "2001:db8::1")
        #expect(resolve(peer: "10.0.0.2", ["198.51.100.1, [fd00::9]:80"]) == "198.51.100.1")
    }

    @Test func addressesComeOutCanonical() {
        #expect(resolve(peer: "::ffff:203.0.113.5", []) == "203.0.113.5")
        #expect(resolve(peer: "::ffff:10.0.0.2", ["2001:DB8:0::1"]) == "2001:db8::1")
        #expect(resolve(peer: "10.0.0.2", ["::ffff:198.51.100.1"]) == "198.51.100.1")
        #expect(resolve(peer: "10.0.0.2", ["198.51.100.1, ::ffff:10.3.3.3"]) == "198.51.100.1", "a mapped proxy address is trusted")
    }

    @Test func peersWithoutAnIPAddress() {
        #expect(resolve(peer: nil, ["198.51.100.1"]) == ClientAddress.unknown)
        #expect(resolve(peer: "/var/run/gateway.sock", ["198.51.100.1"]) == "/var/run/gateway.sock")
    }

    @Test(arguments: [
        ("198.51.100.1", "198.51.100.1"),
        ("::ffff:198.51.100.1", "198.51.100.1"),
        ("2001:db8::1", "2001:db8::/64"),
        ("2001:db8:0:0:ffff::2", "2001:db8::/64"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2::", "2001:db8:1:2::/64"),
        ("::1", "::/64"),
        ("unknown", "unknown"),
    ])
    func limiterKeys(address: String, key: String) {
        #expect(ClientAddress.limiterKey(for: address) == key)
    }

    @Test func oneIPv6SubscriberIsOneKey() {
        let keys = Set(["2001:db8:aa:bb::1", "2001:db8:aa:bb:ffff:ffff:ffff:ffff", "2001:db8:aa:bb:1234::9"].map(ClientAddress.limiterKey))
        #expect(keys == ["2001:db8:aa:bb::/64"])
        #expect(ClientAddress.limiterKey(for: "2001:db8:aa:bc::1") != ClientAddress.limiterKey(for: "2001:db8:aa:bb::1"))
    }
}
