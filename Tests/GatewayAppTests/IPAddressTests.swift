import Testing

@testable import GatewayApp

@Suite struct IPAddressTests {
    @Test(arguments: [
        ("0.0.0.0", "0.0.0.0"),
        ("1.2.3.4", "1.2.3.4"),
        ("255.255.255.255", "255.255.255.255"),
        ("10.0.0.10", "10.0.0.10"),
        ("::", "::"),
        ("::1", "::1"),
        ("1::", "1::"),
        ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
        ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"),
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
        ("1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"),
        ("fe80::1:2", "fe80::1:2"),
        ("::ffff:10.1.2.3", "10.1.2.3"),
        ("::FFFF:a01:203", "10.1.2.3"),
        ("0:0:0:0:0:ffff:10.1.2.3", "10.1.2.3"),
        ("64:ff9b::1.2.3.4", "64:ff9b::102:304"),
        ("::1.2.3.4", "::102:304"),
    ])
    func parsesAndPrintsCanonically(text: String, canonical: String) {
        #expect(IPAddress(text)?.description == canonical)
    }

    @Test(arguments: [
        "", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.256", "01.2.3.4", "1.2.3.00", "1..2.3", ".1.2.3", "1.2.3.4.",
        " 1.2.3.4", "1.2.3.4 ", "1.2.3.-1", "1.2.3.4:80", "0x1.2.3.4", "１.2.3.4",
        ":", ":::", ":1", "1:", "1::2::3", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7:8::", "::1:2:3:4:5:6:7:8",
        "12345::", "g::1", "::1%eth0", "[::1]", "::ffff:1.2.3", "::ffff:1.2.3.4:5", "1.2.3.4::", "::ffff:01.2.3.4",
        "1:2:3:4:5:6:7:1.2.3.4", "unknown", "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255.1",
    ])
    func rejectsAnythingButAPlainAddress(text: String) {
        #expect(IPAddress(text) == nil)
    }

    @Test func ipv4AndItsMappedFormAreTheSameValue() {
        #expect(IPAddress("::ffff:192.0.2.1") == IPAddress("192.0.2.1"))
        #expect(IPAddress("192.0.2.1")?.isIPv4 == true)
        #expect(IPAddress("::192.0.2.1")?.isIPv4 == false)
        #expect(IPAddress("2001:db8::1")?.isIPv4 == false)
    }

    @Test func masking() {
        #expect(IPAddress("2001:db8:1:2:3:4:5:6")?.masked(toPrefixLength: 64).description == "2001:db8:1:2::")
        #expect(IPAddress("2001:db8::1")?.masked(toPrefixLength: 0).description == "::")
        #expect(IPAddress("2001:db8::1")?.masked(toPrefixLength: 128).description == "2001:db8::1")
        #expect(IPAddress("10.1.2.3")?.masked(toPrefixLength: 96 + 8).description == "10.0.0.0")
    }
}
