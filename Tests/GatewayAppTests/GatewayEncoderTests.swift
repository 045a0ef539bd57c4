import Foundation
import NIOCore
import NIOHTTP1
import ServiceCore
import TestSupport
import Testing

@testable import GatewayApp

/// The gateway's own HTTP/1 encoders (`HeadEncoding`, `GatewayResponseEncoder`,
/// `UpstreamRequestEncoder`): heads byte for byte, and the framing rules NIO's encoders had
/// (Content-Length kept, chunked added for HTTP/1.1, none for 1xx/204/304, HEAD without a body,
/// HTTP/1.0 delimited by the close), on the wire through a running gateway.
@Suite("gateway encoders", .timeLimit(.minutes(3)))
struct GatewayEncoderTests {
    static func encode(
        _ status: HTTPResponseStatus, _ headers: [(String, String)], version: HTTPVersion = .http1_1,
        body: HeadEncoding.BodyExpectation = .yes
    ) -> (head: String, framing: HeadEncoding.Framing) {
        let headers = HTTPHeaders(headers)
        let plan = HeadEncoding.plan(headers, version: version, body: body)
        var buffer = ByteBufferAllocator().buffer(capacity: 0)
        HeadEncoding.write(startLine: .status(status, version: version), headers: headers, plan: plan, into: &buffer)
        return (String(buffer: buffer), plan.framing)
    }

    @Test func anAnswerWithContentLengthKeepsItsHeadAsItIs() {
        let (head, framing) = Self.encode(.ok, [("Content-Type", "text/plain"), ("Content-Length", "5"), ("X-Request-ID", "r1")])
        #expect(head == "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nX-Request-ID: r1\r\n\r\n")
        #expect(framing == .contentLength)
        // A Transfer-Encoding beside a Content-Length is dropped: the length frames the body.
        let (both, _) = Self.encode(.ok, [("Transfer-Encoding", "chunked"), ("content-length", "2")])
        #expect(both == "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    }

    @Test func anAnswerWithoutLengthIsChunkedInHTTP11AndCloseDelimitedInHTTP10() {
        let (head, framing) = Self.encode(.ok, [("Content-Type", "text/event-stream"), ("Transfer-Encoding", "gzip")])
        #expect(head == "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        #expect(framing == .chunked)
        let (old, oldFraming) = Self.encode(.ok, [("Content-Type", "text/plain"), ("Connection", "close")], version: .http1_0)
        #expect(old == "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n")
        #expect(oldFraming == .neither)
    }

    @Test(arguments: [HTTPResponseStatus.noContent, .notModified, .continue, .switchingProtocols])
    func answersThatCannotHaveABodyLoseTheirFramingHeaders(status: HTTPResponseStatus) {
        let (head, framing) = Self.encode(
            status, [("ETag", #""v1""#), ("Content-Length", "10"), ("Transfer-Encoding", "chunked")],
            body: status.mayHaveResponseBody ? .yes : .no
        )
        #expect(head == "HTTP/1.1 \(status.code) \(status.reasonPhrase)\r\nETag: \"v1\"\r\n\r\n")
        #expect(framing == .neither)
    }

    @Test func valuesWithSeparatorsQuotesAndNonASCIIBytesGoOutUnchanged() {
        let value = #"attachment; filename="a b\c.txt"; filename*=UTF-8''caf%C3%A9"#
        let (head, _) = Self.encode(
            HTTPResponseStatus(statusCode: 299, reasonPhrase: "Fine"),
            [("Content-Disposition", value), ("Link", #"<https://x.test/?a=1&b=2>; rel="next""#), ("X-Note", "café ☕"), ("Content-Length", "0")]
        )
        #expect(
            head
                == "HTTP/1.1 299 Fine\r\nContent-Disposition: \(value)\r\nLink: <https://x.test/?a=1&b=2>; rel=\"next\"\r\nX-Note: café ☕\r\nContent-Length: 0\r\n\r\n"
        )
    }

    @Test func manyHeadersKeepTheirOrder() {
        let fields = (0..<150).map { ("X-Field-\($0)", String(repeating: "v", count: $0)) }
        let (head, _) = Self.encode(.created, fields + [("Content-Length", "0")])
        let expected = "HTTP/1.1 201 Created\r\n" + fields.map { "\($0.0): \($0.1)\r\n" }.joined() + "Content-Length: 0\r\n\r\n"
        #expect(head == expected)
    }

    @Test func numbersAreWrittenAsStringWouldWriteThem() {
        var values = [0, 1, 9, 10, 11, 99, 100, 101, 999, 1_000, 1_764_480_000, Int.max, -1, -10, -12_345, Int.min + 1]
        for power in 0..<19 { values += [Self.power(power) - 1, Self.power(power), Self.power(power) + 1] }
        for value in values {
            let bytes = [UInt8](unsafeUninitializedCapacity: 24) { buffer, count in
                var out = UnsafeMutableRawPointer(buffer.baseAddress!)
                HeadEncoding.copyDecimal(value, to: &out)
                count = out - UnsafeMutableRawPointer(buffer.baseAddress!)
            }
            #expect(String(decoding: bytes, as: UTF8.self) == String(value))
            #expect(HeadEncoding.decimalSize(value) == String(value).utf8.count)
        }
    }

    static func power(_ exponent: Int) -> Int { (0..<exponent).reduce(1) { product, _ in product * 10 } }

    @Test func requestIDsAreLowerCaseUUIDsAndNeverRepeat() {
        let ids = (0..<1_000).map { _ in RequestIDs.next() }
        #expect(Set(ids).count == ids.count)
        for id in ids {
            #expect(UUID(uuidString: id) != nil, "\(id)")
            #expect(id == id.lowercased())
        }
    }

    @Test func forwardedRequestHeadsAreWrittenWholeAndFramedByTheirBody() throws {
        let upstream = try UpstreamAddress(Upstream(name: .billing, baseURL: "http://u:1"))
        func encode(_ method: HTTPMethod, _ bodyLength: Int?, _ headers: [(String, String)] = [("Host", "g"), ("Accept", "*/*")]) -> (String, HeadEncoding.Framing) {
            let (buffer, framing) = ForwardedHeaders.writeRequest(
                RequestHead.lines(method, "/x", headers), target: "/a/b?c=d%20e",
                upstream: upstream, requestID: "r1", peer: "10.0.0.1", peerIsTrusted: false, bodyLength: bodyLength,
                allocator: ByteBufferAllocator()
            )
            return (String(buffer: buffer), framing)
        }
        let gatewayLines = "host: u:1\r\nx-request-id: r1\r\nx-forwarded-for: 10.0.0.1\r\nx-forwarded-proto: http\r\nx-forwarded-host: g\r\n"
        #expect(encode(.GET, 0) == ("GET /a/b?c=d%20e HTTP/1.1\r\nAccept: */*\r\n\(gatewayLines)\r\n", .neither))
        #expect(encode(.POST, nil) == ("POST /a/b?c=d%20e HTTP/1.1\r\nAccept: */*\r\n\(gatewayLines)transfer-encoding: chunked\r\n\r\n", .chunked))
        #expect(encode(.POST, 3) == ("POST /a/b?c=d%20e HTTP/1.1\r\nAccept: */*\r\n\(gatewayLines)content-length: 3\r\n\r\n", .contentLength))
        #expect(encode(.POST, 0).1 == .contentLength && encode(.POST, 0).0.hasSuffix("content-length: 0\r\n\r\n"))
        #expect(encode(.DELETE, 0) == ("DELETE /a/b?c=d%20e HTTP/1.1\r\nAccept: */*\r\n\(gatewayLines)\r\n", .neither))
        #expect(encode(.TRACE, 5).1 == .neither)
        // The client's framing, hop-by-hop and gateway-owned lines never go up; its forwarding claims are replaced.
        let (head, _) = encode(
            .POST, 2,
            [
                ("Host", "g"), ("Content-Length", "2"), ("Transfer-Encoding", "chunked"), ("Connection", "keep-alive, X-Hop"), ("X-Hop", "1"),
                ("X-Forwarded-For", "1.2.3.4"), ("X-Forwarded-Host", "evil"), ("X-Service-Token", "t"), ("X-Request-ID", "client"),
                ("Expect", "100-continue"), ("TE", "trailers"), ("X-Kept", "yes"),
            ]
        )
        #expect(head == "POST /a/b?c=d%20e HTTP/1.1\r\nX-Kept: yes\r\n\(gatewayLines)content-length: 2\r\n\r\n")
        // Many and long lines fit the buffer reserved for them.
        let many = (0..<100).map { ("X-Long-\($0)", String(repeating: "v", count: 200)) }
        let (long, _) = encode(.GET, 0, many)
        #expect(long.utf8.count == "GET /a/b?c=d%20e HTTP/1.1\r\n".utf8.count + many.reduce(0) { $0 + $1.0.utf8.count + $1.1.utf8.count + 4 } + "host: u:1\r\nx-request-id: r1\r\nx-forwarded-for: 10.0.0.1\r\nx-forwarded-proto: http\r\n\r\n".utf8.count)
    }

    // MARK: - The lines the gateway adds

    static func bytes(_ write: (inout UnsafeMutableRawPointer) -> Void, size: Int) -> String {
        var buffer = ByteBufferAllocator().buffer(capacity: 0)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { raw in
            var out = raw.baseAddress!
            write(&out)
            return out - raw.baseAddress!
        }
        #expect(buffer.readableBytes == size, "the size computed beforehand must be the size written")
        return String(buffer: buffer)
    }

    @Test func rateLimitLinesSpellWhatRateLimitHeaderValuesSpells() {
        let now = Date(timeIntervalSince1970: 1_800_000_030.4)
        let decisions = [
            RateLimitDecision(allowed: true, limit: 60, remaining: 12, resetAt: 1_800_000_060, retryAfter: 1, policyWindowSeconds: 60),
            RateLimitDecision(allowed: false, limit: 10, remaining: 0, resetAt: 1_800_000_060, retryAfter: 6, policyWindowSeconds: 60),
            RateLimitDecision(allowed: true, limit: 1_000_000_000, remaining: 999_999_999, resetAt: 1_800_000_000, retryAfter: 1, policyWindowSeconds: 3600),
            RateLimitDecision(allowed: true, limit: 5, remaining: 0, resetAt: 1_800_000_100, retryAfter: 40, policyWindowSeconds: 60),
        ]
        for decision in decisions {
            for name in ["tenant", "ip", #"a"b\c"#, "é\u{7}x\ny", ""] {
                let expected = RateLimitHeaderValues(decision, policyName: name, now: now).fields.map { "\($0.name): \($0.value)\r\n" }.joined()
                let lines = RateLimitLines(decision, policyName: name, now: now)
                #expect(Self.bytes({ lines.copy(to: &$0) }, size: lines.size) == expected, "\(decision) \(name)")
            }
        }
    }

    @Test func addedLinesFollowTheAnswersOwnHeadersBeforeTheFraming() {
        let now = Date(timeIntervalSince1970: 1_800_000_030)
        let decision = RateLimitDecision(allowed: true, limit: 60, remaining: 59, resetAt: 1_800_000_060, retryAfter: 1, policyWindowSeconds: 60)
        var present = SecurityHeaders.Set()
        present.insert(0)
        present.insert(3)
        let added = AddedLines(
            securityPresent: present, requestID: "req-1", rateLimit: RateLimitLines(decision, policyName: "ip", now: now),
            extra: [("Access-Control-Allow-Origin", "https://a.test")], connection: .close
        )
        let headers = HTTPHeaders([("Content-Security-Policy", "default-src 'self'"), ("X-Frame-Options", "SAMEORIGIN")])
        let plan = HeadEncoding.plan(headers, version: .http1_1, body: .yes)
        var buffer = ByteBufferAllocator().buffer(capacity: 0)
        HeadEncoding.write(startLine: .status(.ok, version: .http1_1), headers: headers, added: added, plan: plan, into: &buffer)
        #expect(
            String(buffer: buffer) == "HTTP/1.1 200 OK\r\n" + "Content-Security-Policy: default-src 'self'\r\nX-Frame-Options: SAMEORIGIN\r\n"
                + "Strict-Transport-Security: max-age=31536000; includeSubDomains\r\nX-Content-Type-Options: nosniff\r\n"
                + "X-XSS-Protection: 1; mode=block\r\nReferrer-Policy: no-referrer\r\n" + "X-Request-ID: req-1\r\n"
                + "X-RateLimit-Limit: 60\r\nX-RateLimit-Remaining: 59\r\nX-RateLimit-Reset: 1800000060\r\n"
                + "RateLimit-Policy: \"ip\";q=60;w=60\r\nRateLimit: \"ip\";r=59;t=30\r\n"
                + "Access-Control-Allow-Origin: https://a.test\r\nConnection: close\r\ntransfer-encoding: chunked\r\n\r\n"
        )
        // Nothing present: the six as one block, in their order.
        let all = AddedLines(requestID: "r")
        #expect(
            Self.bytes({ all.copy(to: &$0) }, size: all.size)
                == SecurityHeaders.fields.map { "\($0.0): \($0.1)\r\n" }.joined() + "X-Request-ID: r\r\n"
        )
    }

    // MARK: - On the wire

    /// An upstream whose answer the query picks: `length`, `chunked`, `204`, `304`, `many`.
    static func upstream() throws -> RawTCPServer {
        try RawTCPServer { connection in
            defer { connection.close() }
            while let head = connection.read(until: "\r\n\r\n") {
                let line = head.prefix { $0 != "\r" }
                let isHead = line.hasPrefix("HEAD ")
                if line.contains("answer=chunked") {
                    connection.send("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n")
                    if !isHead { connection.send("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n") }
                } else if line.contains("answer=204") {
                    connection.send("HTTP/1.1 204 No Content\r\nX-Kept: yes\r\n\r\n")
                } else if line.contains("answer=304") {
                    connection.send("HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n")
                } else if line.contains("answer=many") {
                    let extra = (0..<40).map { "X-Extra-\($0): value \($0); q=\"\($0)\"\r\n" }.joined()
                    connection.send("HTTP/1.1 200 OK\r\n\(extra)Content-Length: 5\r\n\r\n" + (isHead ? "" : "plans"))
                } else {
                    connection.send(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nLink: <https://x.test/?a=1&b=2>; rel=\"next\"\r\nContent-Length: 5\r\n\r\n"
                            + (isHead ? "" : "plans")
                    )
                }
            }
        }
    }

    /// The head's lines with the values that change from request to request (rate-limit
    /// counters and times) replaced by `*`.
    static func lines(_ head: String?) -> [String] {
        (head ?? "").components(separatedBy: "\r\n").map { line in
            let name = line.prefix { $0 != ":" }.lowercased()
            return name.hasPrefix("x-ratelimit-") || name.hasPrefix("ratelimit") ? "\(line.prefix { $0 != ":" }): *" : line
        }
    }

    static let added = [
        "Content-Security-Policy: default-src 'none'; frame-ancestors 'none'",
        "Strict-Transport-Security: max-age=31536000; includeSubDomains",
        "X-Content-Type-Options: nosniff", "X-Frame-Options: DENY", "X-XSS-Protection: 1; mode=block", "Referrer-Policy: no-referrer",
    ]
    static let rateLimit = ["X-RateLimit-Limit: *", "X-RateLimit-Remaining: *", "X-RateLimit-Reset: *", "RateLimit-Policy: *", "RateLimit: *"]

    static func request(_ query: String, method: String = "GET", id: String, version: String = "1.1") -> String {
        "\(method) /api/payments/plans?answer=\(query) HTTP/\(version)\r\nHost: g\r\nX-Request-ID: \(id)\r\n\r\n"
    }

    @Test func relayedAnswersGoOutWithExactHeadsAndFraming() async throws {
        let upstream = try Self.upstream()
        let overrides = GatewayTransportTests.overrides.merging(["BILLING_URL": upstream.url, "TENANCY_URL": upstream.url]) { $1 }
        try await TestStack.with(.gateway, overrides: overrides) { stack in
            let port = stack.ports[.gateway]!
            let seen = try await RawTCP.run {
                let client = try RawConnection.connect(port: port)
                defer { client.close() }
                var seen: [String: (head: String?, body: String)] = [:]
                // One keep-alive connection throughout: a framing mistake would garble what follows.
                client.send(Self.request("length", id: "len"))
                seen["length"] = (client.read(until: "\r\n\r\n"), String(decoding: client.read(count: 5), as: UTF8.self))
                client.send(Self.request("chunked", id: "chunk"))
                seen["chunked"] = (client.read(until: "\r\n\r\n"), client.read(until: "0\r\n\r\n").map { $0 + "0\r\n\r\n" } ?? "")
                client.send(Self.request("chunked", method: "HEAD", id: "head"))
                seen["head"] = (client.read(until: "\r\n\r\n"), "")
                client.send(Self.request("204", id: "nc"))
                seen["204"] = (client.read(until: "\r\n\r\n"), "")
                client.send(Self.request("304", id: "nm"))
                seen["304"] = (client.read(until: "\r\n\r\n"), "")
                client.send(Self.request("many", id: "many"))
                seen["many"] = (client.read(until: "\r\n\r\n"), String(decoding: client.read(count: 5), as: UTF8.self))
                return seen
            }
            let tail = Self.added + ["X-Request-ID: %"] + Self.rateLimit
            func expected(_ status: String, _ upstreamLines: [String], id: String, framing: [String]) -> [String] {
                [status] + upstreamLines + tail.map { $0.replacingOccurrences(of: "%", with: id) } + framing
            }
            #expect(
                Self.lines(seen["length"]?.head)
                    == expected("HTTP/1.1 200 OK", ["Content-Type: text/plain", "Link: <https://x.test/?a=1&b=2>; rel=\"next\"", "Content-Length: 5"], id: "len", framing: [])
            )
            #expect(seen["length"]?.body == "plans")
            #expect(
                Self.lines(seen["chunked"]?.head)
                    == expected("HTTP/1.1 200 OK", ["Content-Type: text/plain"], id: "chunk", framing: ["transfer-encoding: chunked"])
            )
            #expect(Self.dechunk(seen["chunked"]?.body ?? "") == "hello world")
            // HEAD: the framing a GET would have, and no body (the next head follows at once).
            #expect(
                Self.lines(seen["head"]?.head)
                    == expected("HTTP/1.1 200 OK", ["Content-Type: text/plain"], id: "head", framing: ["transfer-encoding: chunked"])
            )
            #expect(Self.lines(seen["204"]?.head) == expected("HTTP/1.1 204 No Content", ["X-Kept: yes"], id: "nc", framing: []))
            #expect(Self.lines(seen["304"]?.head) == expected("HTTP/1.1 304 Not Modified", ["ETag: \"v1\""], id: "nm", framing: []))
            let many = (0..<40).map { "X-Extra-\($0): value \($0); q=\"\($0)\"" }
            #expect(Self.lines(seen["many"]?.head) == expected("HTTP/1.1 200 OK", many + ["Content-Length: 5"], id: "many", framing: []))
            #expect(seen["many"]?.body == "plans")
        }
    }

    @Test func http10ClientsGetCloseDelimitedBodiesAndTheGatewaysOwnAnswersAreFramed() async throws {
        let upstream = try Self.upstream()
        let overrides = GatewayTransportTests.overrides.merging(["BILLING_URL": upstream.url, "TENANCY_URL": upstream.url]) { $1 }
        try await TestStack.with(.gateway, overrides: overrides) { stack in
            let port = stack.ports[.gateway]!
            let (old, own) = try await RawTCP.run {
                let client = try RawConnection.connect(port: port)
                client.send(Self.request("chunked", id: "old", version: "1.0"))
                let head = client.read(until: "\r\n\r\n")
                var body: [UInt8] = []
                while let more = client.readSome() { body += more }
                client.close()
                // The gateway's own answer (HEAD /live): its length, no body, and the connection stays.
                let second = try RawConnection.connect(port: port)
                defer { second.close() }
                second.send("HEAD /live HTTP/1.1\r\nHost: g\r\nX-Request-ID: own\r\n\r\n")
                let ownHead = second.read(until: "\r\n\r\n")
                second.send("GET /live HTTP/1.1\r\nHost: g\r\n\r\n")
                let next = second.readResponse()
                return ((head, String(decoding: body, as: UTF8.self)), (ownHead, next?.status))
            }
            #expect(Self.lines(old.0) == ["HTTP/1.0 200 OK", "Content-Type: text/plain"] + Self.added + ["X-Request-ID: old"] + Self.rateLimit + ["Connection: close"])
            #expect(old.1 == "hello world")
            let ownLines = Self.lines(own.0)
            #expect(ownLines.first == "HTTP/1.1 200 OK")
            #expect(ownLines.contains { $0.hasPrefix("Content-Length: ") && $0 != "Content-Length: 0" })
            #expect(!ownLines.contains { $0.lowercased().hasPrefix("transfer-encoding") })
            #expect(own.1 == 200)
        }
    }

    /// The data of a chunked body (nil when it is not well-formed or not ended).
    static func dechunk(_ text: String) -> String? {
        var rest = Substring(text)
        var data = ""
        while let lineEnd = rest.range(of: "\r\n") {
            guard let size = Int(rest[..<lineEnd.lowerBound], radix: 16) else { return nil }
            rest = rest[lineEnd.upperBound...]
            if size == 0 { return rest == "\r\n" ? data : nil }
            let bytes = Array(rest.utf8)
            guard bytes.count >= size + 2, bytes[size] == 13, bytes[size + 1] == 10 else { return nil }
            data += String(decoding: bytes[..<size], as: UTF8.self)
            rest = Substring(String(decoding: bytes[(size + 2)...], as: UTF8.self))
        }
        return nil
    }
}
