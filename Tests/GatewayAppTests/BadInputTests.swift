import Foundation
import NIOHTTP1
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

/// Hostile input through the gateway: every answer is a 4xx with the suite's error body (or a
/// closed connection), never a 5xx or a crash, and nothing is written anywhere.
@Suite("bad input", .timeLimit(.minutes(2)))
struct BadInputTests {
    static let overrides = ["RATE_LIMIT_AUTH_PER_MINUTE": "100000", "RATE_LIMIT_PUBLIC_PER_MINUTE": "100000"]

    static let hostileBodies: [(String, [UInt8])] = [
        ("invalid UTF-8", Array(#"{"email":""#.utf8) + [0xFF, 0xFE, 0xC3] + Array(#"","password":"Str0ngPassw0rd","account_name":"A"}"#.utf8)),
        ("10,000 nested arrays", Array((String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)).utf8)),
        ("10,000 nested objects", Array((String(repeating: #"{"a":"#, count: 10_000) + "1" + String(repeating: "}", count: 10_000)).utf8)),
        ("huge number", Array(#"{"email":1e999999,"password":123456789012345678901234567890123456789012345678901234567890,"account_name":-1e400}"#.utf8)),
        ("huge integer for a string", Array(#"{"email":"x@example.com","password":99999999999999999999999999999999999999,"account_name":"A"}"#.utf8)),
        ("duplicate keys", Array(#"{"email":"first@example.com","email":"second@example.com","password":"Str0ngPassw0rd","account_name":"A"}"#.utf8)),
        ("escaped duplicate keys", Array(#"{"email":"first@example.com","\u0065mail":"second@example.com","password":"Str0ngPassw0rd","account_name":"A"}"#.utf8)),
        ("NUL in a string", Array(#"{"email":"nul\u0000@example.com","password":"Str0ngPassw0rd","account_name":"A\u0000B"}"#.utf8)),
        ("raw NUL byte", Array(#"{"email":"nul"#.utf8) + [0] + Array(#"@example.com","password":"Str0ngPassw0rd","account_name":"A"}"#.utf8)),
        ("top-level string", Array(#""just a string""#.utf8)),
        ("truncated", Array(#"{"email":"x@example.com","password":"#.utf8)),
    ]

    @Test func hostileJSONBodiesAre4xxAndWriteNothing() async throws {
        try await TestStack.with(.auth, .billing, .tenancy, .gateway, overrides: Self.overrides) { stack in
            for path in ["/api/onboarding/register", "/api/auth/login"] {
                for (name, bytes) in Self.hostileBodies {
                    let response = try await TestHTTP.send(.POST, stack.url(.gateway) + path, bytes: bytes)
                    #expect((400..<500).contains(response.status) && response.status != 401, "\(path) \(name): \(response.status) \(response.text)")
                    #expect((try? response.error().detail.isEmpty) == false, "\(path) \(name): \(response.text)")
                }
            }
            #expect(try await TestPostgres.count(stack.databases[.tenancy]!, "SELECT count(*)::int FROM tenants") == 0)
            #expect(try await TestPostgres.count(stack.databases[.auth]!, "SELECT count(*)::int FROM users") == 0)
            #expect(try await TestPostgres.count(stack.databases[.billing]!, "SELECT count(*)::int FROM subscriptions") == 0)
            // The same services still register a well-formed request.
            _ = try await Fixtures.register(at: stack.url(.gateway))
        }
    }

    @Test func hostileHeadsAreRefusedAndTheGatewayStaysUp() async throws {
        try await TestStack.with(.billing, .tenancy, .gateway, overrides: Self.overrides) { stack in
            let port = stack.ports[.gateway]!
            let manyHeaders = (0..<5_000).map { "X-Filler-\($0): value\r\n" }.joined()
            let heads: [(String, String)] = [
                ("NUL in a header value", "GET /api/payments/plans HTTP/1.1\r\nHost: g\r\nX-Test: a\u{0}b\r\n\r\n"),
                ("NUL in a header name", "GET /api/payments/plans HTTP/1.1\r\nHost: g\r\nX-Te\u{0}st: ab\r\n\r\n"),
                ("NUL in the path", "GET /api/payments/plans\u{0}/x HTTP/1.1\r\nHost: g\r\n\r\n"),
                ("encoded NUL in the path", "GET /api/payments/plans%00 HTTP/1.1\r\nHost: g\r\n\r\n"),
                ("encoded NUL segment", "GET /api/payments/%00/plans HTTP/1.1\r\nHost: g\r\n\r\n"),
                ("encoded NUL in a path parameter", "GET /api/tenants/a%00b/theme HTTP/1.1\r\nHost: g\r\n\r\n"),
                ("invalid UTF-8 in a path parameter", "GET /api/tenants/%C3%28/theme HTTP/1.1\r\nHost: g\r\n\r\n"),
                ("5,000 headers", "GET /api/payments/plans HTTP/1.1\r\nHost: g\r\n" + manyHeaders + "\r\n"),
                ("a 100 KB header", "GET /api/payments/plans HTTP/1.1\r\nHost: g\r\nX-Big: " + String(repeating: "a", count: 100_000) + "\r\n\r\n"),
                ("negative Content-Length", "POST /api/onboarding/register HTTP/1.1\r\nHost: g\r\nContent-Length: -5\r\n\r\n"),
                ("two Content-Lengths", "POST /api/onboarding/register HTTP/1.1\r\nHost: g\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}"),
                ("not HTTP", "HELLO THERE\r\n\r\n"),
            ]
            for (name, head) in heads {
                let answer = try await RawTCP.run {
                    let client = try RawConnection.connect(port: port)
                    defer { client.close() }
                    client.send(head)
                    return client.readResponse()
                }
                if let answer {
                    #expect((400..<500).contains(answer.status), "\(name): \(answer.status) \(answer.body)")
                }
            }
            // A query parameter nobody reads may hold anything; it changes nothing.
            let plans = try await TestHTTP.send(.GET, stack.url(.gateway) + "/api/payments/plans?x=%00")
            #expect(plans.status == 200)
        }
    }
}
