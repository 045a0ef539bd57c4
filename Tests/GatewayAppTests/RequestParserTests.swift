import NIOCore
import NIOHTTP1
import Testing

@testable import GatewayApp

/// `RequestParser`, the public port's reader of client requests, byte by byte: every request
/// shape split at every byte, the smuggling shapes and malformed heads it refuses (as the errors
/// `ProxyHandler` answers 400 or 431), and where it stops reading HTTP.
@Suite("request parser")
struct RequestParserTests {
    /// What the parser gave, with the body parts joined.
    struct Request: Equatable {
        var method: HTTPMethod
        var uri: String
        var version: HTTPVersion
        var headers: [String]
        var body = ""
        var ended = false
    }

    static func parse(_ chunks: [String], maxHeaderBytes: Int = 32_768) throws(HTTPParserError) -> (requests: [Request], stopped: Bool, left: Int) {
        var parser = RequestParser(maxHeaderBytes: maxHeaderBytes)
        var requests: [Request] = []
        var left = 0
        for chunk in chunks {
            var input = ByteBuffer(string: chunk)
            while let part = try parser.next(&input) {
                switch part {
                case .head(let head):
                    requests.append(Request(method: head.method, uri: head.uri, version: head.version, headers: head.headers.map { "\($0.name)=\($0.value)" }))
                case .body(let part):
                    requests[requests.count - 1].body += String(buffer: part)
                case .end:
                    requests[requests.count - 1].ended = true
                }
            }
            left += input.readableBytes
        }
        return (requests, parser.isStopped, left)
    }

    /// The same bytes whole, split in two at every offset, and one byte at a time must read the same.
    static func everySplit(_ wire: String) throws -> [Request] {
        let whole = try parse([wire])
        let bytes = Array(wire.utf8)
        for cut in 1..<bytes.count {
            let split = try parse([String(decoding: bytes[..<cut], as: UTF8.self), String(decoding: bytes[cut...], as: UTF8.self)])
            #expect(split.requests == whole.requests, "split at \(cut)")
        }
        #expect(try parse(bytes.map { String(decoding: [$0], as: UTF8.self) }).requests == whole.requests)
        return whole.requests
    }

    /// The head of one request, as the parser gives it.
    static func head(_ wire: String) throws -> RequestHead {
        var parser = RequestParser(maxHeaderBytes: 32_768)
        var input = ByteBuffer(string: wire)
        guard case .head(let head) = try parser.next(&input) else { throw HTTPParserError.invalidEOFState }
        return head
    }

    @Test func whatTheGatewayActsOnIsReadInTheSameScan() throws {
        // Keep-alive as `HTTPRequestHead.isKeepAlive` decides it (RFC 9112 §9.3).
        for (wire, keepAlive) in [
            ("GET / HTTP/1.1\r\n\r\n", true), ("GET / HTTP/1.1\r\nConnection: Close\r\n\r\n", false),
            ("GET / HTTP/1.1\r\nConnection: x-hop, close\r\n\r\n", false), ("GET / HTTP/1.0\r\n\r\n", false),
            ("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true), ("GET / HTTP/1.0\r\nconnection: x\r\nConnection: keep-alive\r\n\r\n", true),
        ] {
            let head = try Self.head(wire)
            #expect(head.isKeepAlive == keepAlive, "\(wire)")
            #expect(head.isKeepAlive == head.httpHead.isKeepAlive, "\(wire)")
        }
        let head = try Self.head(
            "POST /a?b HTTP/1.1\r\nAUTHORIZATION:  Bearer t1 \r\nAuthorization: Bearer t2\r\nX-Forwarded-For: 1.1.1.1\r\nOrigin: https://o\r\n"
                + "x-forwarded-for: 2.2.2.2, 3.3.3.3\r\nX-Request-ID: r\r\nX-Session-ID: s\r\nX-API-Key: k\r\nExpect: 100-continue\r\n"
                + "Idempotency-Key: i\r\nConnection: keep-alive, X-Hop\r\nContent-Length: 3\r\n\r\nabc"
        )
        let facts = head.facts
        #expect(facts.authorization == "Bearer t1" && facts.origin == "https://o" && facts.requestID == "r" && facts.sessionID == "s")
        #expect(facts.apiKey == "k" && facts.expect == "100-continue" && facts.idempotencyKey && !facts.upgrade)
        #expect(facts.connectionKeepAlive && facts.connectionNamesHeaders && !facts.connectionClose && facts.declaredLength == 3)
        #expect(head.values("x-forwarded-for") == ["1.1.1.1", "2.2.2.2, 3.3.3.3"] && head.first("authorization") == "Bearer t1")
        #expect(head.first("content-type") == nil && ForwardedHeaders.connectionTokens(head) == [Array("x-hop".utf8)])
        #expect(head.method == .POST && head.uri == "/a?b" && head.headers.count == 12)
        #expect(try Self.head("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").facts.declaredLength == nil)
        #expect(try Self.head("GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\n").facts.upgrade)
    }

    @Test func requestsReadTheSameHoweverTheBytesAreSplit() throws {
        let wire = "GET /api/payments/plans?x=1 HTTP/1.1\r\nHost: g\r\nAuthorization:  Bearer t \r\n\r\n"
            + "POST /api/onboarding/register HTTP/1.1\r\nHost: g\r\nContent-Length: 7\r\n\r\n{\"a\":1}"
            + "\r\nDELETE /x HTTP/1.0\r\ncontent-length: 0\r\n\r\n"
        let requests = try Self.everySplit(wire)
        #expect(
            requests == [
                Request(method: .GET, uri: "/api/payments/plans?x=1", version: .http1_1, headers: ["Host=g", "Authorization=Bearer t"], ended: true),
                Request(method: .POST, uri: "/api/onboarding/register", version: .http1_1, headers: ["Host=g", "Content-Length=7"], body: "{\"a\":1}", ended: true),
                Request(method: .DELETE, uri: "/x", version: .http1_0, headers: ["content-length=0"], ended: true),
            ]
        )
    }

    @Test func chunkedBodiesAreDechunked() throws {
        let wire = "PATCH /p HTTP/1.1\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n3;ext=1\r\nabc\r\n4\r\ndefg\r\n0\r\nX-Trailer: t\r\n\r\n"
            + "OPTIONS * HTTP/1.1\r\n\r\n"
        let requests = try Self.everySplit(wire)
        #expect(requests.count == 2)
        #expect(requests.first?.body == "abcdefg" && requests.first?.ended == true)
        #expect(requests.last?.method == .OPTIONS && requests.last?.uri == "*" && requests.last?.ended == true)
    }

    @Test func nothingAfterARequestSwitchingProtocolsIsReadAsHTTP() throws {
        let upgrade = "GET /api/realtime HTTP/1.1\r\nHost: g\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\u{81}\u{02}hiGET / HTTP/1.1\r\n\r\n"
        let read = try Self.parse([upgrade])
        #expect(read.requests.count == 1 && read.requests.first?.ended == true)
        #expect(read.stopped)
        #expect(read.left == "\u{81}\u{02}hiGET / HTTP/1.1\r\n\r\n".utf8.count)
        #expect(try Self.parse(["CONNECT g:443 HTTP/1.1\r\n\r\nbytes"]).left == 5)
    }

    @Test func aRequestStartedButNotEndedIsMidRequest() throws {
        for (wire, mid) in [("GET / HT", true), ("POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab", true), ("GET / HTTP/1.1\r\n\r\n", false), ("", false)] {
            var parser = RequestParser(maxHeaderBytes: 1_024)
            var input = ByteBuffer(string: wire)
            while try parser.next(&input) != nil {}
            #expect(parser.isMidRequest == mid, "\(wire)")
        }
    }

    static let post = "POST /api/onboarding/register HTTP/1.1\r\nHost: g\r\n"

    @Test(arguments: [
        // Request smuggling shapes.
        (post + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", HTTPParserError.unexpectedContentLength),
        (post + "Transfer-Encoding: chunked\r\nContent-Length: 60\r\n\r\n0\r\n\r\n", .unexpectedContentLength),
        (post + "Content-Length: 2\r\nContent-Length: 50\r\n\r\n{}", .unexpectedContentLength),
        (post + "Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}", .unexpectedContentLength),
        (post + "Content-Length: 2\r\nX-Folded: a\r\n b\r\n\r\n{}", .invalidHeaderToken),
        (post + "Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", .invalidHeaderToken),
        (post + "Content-Length : 2\r\n\r\n{}", .invalidHeaderToken),
        (post + "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", .invalidHeaderToken),
        (post + "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n", .invalidHeaderToken),
        (post + "Transfer-Encoding: gzip\r\n\r\n", .invalidHeaderToken),
        (post + "Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", .invalidChunkSize),
        (post + "Transfer-Encoding: chunked\r\n\r\n2\r\n{}X\r\n0\r\n\r\n", .invalidChunkSize),
        (post + "Content-Length: -5\r\n\r\n", .invalidContentLength),
        (post + "Content-Length: 1,1\r\n\r\n", .invalidContentLength),
        (post + "Content-Length: \r\n\r\n", .invalidContentLength),
        // Malformed heads.
        ("GET /api/payments/plans HTTP/1.1\r\nHost: g\r\nX-Test: a\u{0}b\r\n\r\n", .invalidHeaderToken),
        ("GET /api/payments/plans HTTP/1.1\r\nHost: g\r\nX-Te\u{0}st: ab\r\n\r\n", .invalidHeaderToken),
        ("GET /api/payments/plans\u{0}/x HTTP/1.1\r\nHost: g\r\n\r\n", .invalidURL),
        ("GET /caf\u{E9} HTTP/1.1\r\n\r\n", .invalidURL),
        ("GET  / HTTP/1.1\r\n\r\n", .invalidURL),
        ("GET / HTTP/1.1\nHost: g\r\n\r\n", .lfExpected),
        ("GET / HTTP/1.1\r\nHost: g\n\r\n", .lfExpected),
        ("GET / HTTP/2.0\r\n\r\n", .invalidVersion),
        ("GET / HTTP/1.2\r\n\r\n", .invalidVersion),
        ("HELLO THERE\r\n\r\n", .invalidURL),
        ("GET / HTTPS/1.1\r\n\r\n", .invalidVersion),
        (" GET / HTTP/1.1\r\n\r\n", .invalidMethod),
        ("G(T / HTTP/1.1\r\n\r\n", .invalidMethod),
        ("\u{16}\u{03}\u{01}", .invalidMethod),
    ])
    func malformedRequestsAreRefused(wire: String, error: HTTPParserError) {
        #expect(throws: error) { try Self.parse([wire]) }
        #expect(throws: error) { try Self.parse(Array(wire.utf8).map { String(decoding: [$0], as: UTF8.self) }) }
    }

    @Test func aValueEndsAtItsFirstControlByteWhereverItStands() {
        // Eight bytes at a time, then one by one: every offset, every kind of stop.
        for stop: UInt8 in [0x00, 0x01, 0x09 + 1, 0x0D, 0x1F, 0x7F] {
            for position in 0..<40 {
                var value = [UInt8](repeating: UInt8(ascii: "a"), count: 40)
                value[position] = stop
                let end = value.withUnsafeBytes { HTTPWire.fieldValueEnd($0, from: 0) }
                #expect(end == position, "byte \(stop) at \(position)")
            }
        }
        // Tabs, spaces and obs-text are value bytes.
        let mixed: [UInt8] = Array("a\tb c".utf8) + [0x80, 0xC3, 0xA9, 0xFF] + Array("0123456789abcdef".utf8)
        #expect(mixed.withUnsafeBytes { HTTPWire.fieldValueEnd($0, from: 0) } == mixed.count)
        #expect(mixed.withUnsafeBytes { HTTPWire.fieldValueEnd($0, from: 3) } == mixed.count)
    }

    @Test func headsBeyondTheLimitAreRefusedAsOverflow() throws {
        let big = "GET / HTTP/1.1\r\nX-Big: " + String(repeating: "a", count: 2_000) + "\r\n\r\n"
        #expect(throws: HTTPParserError.headerOverflow) { try Self.parse([big], maxHeaderBytes: 1_024) }
        let many = "GET / HTTP/1.1\r\n" + (0..<200).map { "X-Filler-\($0): value\r\n" }.joined() + "\r\n"
        #expect(throws: HTTPParserError.headerOverflow) { try Self.parse([many], maxHeaderBytes: 1_024) }
        // Never ended, in pieces: refused once past the limit, not held without end.
        #expect(throws: HTTPParserError.headerOverflow) {
            try Self.parse(["GET / HTTP/1.1\r\n"] + Array(repeating: "X-Filler: \(String(repeating: "f", count: 100))\r\n", count: 30), maxHeaderBytes: 1_024)
        }
        #expect(throws: HTTPParserError.headerOverflow) { try Self.parse(["GET /" + String(repeating: "a", count: 2_000) + " HTTP/1.1\r\n\r\n"], maxHeaderBytes: 1_024) }
        // Just within: read.
        let within = "GET / HTTP/1.1\r\nX-Big: " + String(repeating: "a", count: 900) + "\r\n\r\n"
        #expect(try Self.parse([within], maxHeaderBytes: 1_024).requests.count == 1)
    }
}
