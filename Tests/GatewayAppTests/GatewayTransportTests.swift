import Foundation
import NIOHTTP1
import ServiceCore
import Synchronization
import TestSupport
import Testing

@testable import GatewayApp

/// The gateway's data plane on the wire, with raw sockets on both sides: the bad input of the
/// gateway issue (slow clients, oversized and smuggling heads, idle floods, upstreams and clients
/// leaving mid-answer) and the HTTP/1.1 details a proxy must get right.
@Suite("gateway transport", .timeLimit(.minutes(3)))
struct GatewayTransportTests {
    static let overrides = [
        "RATE_LIMIT_PUBLIC_PER_MINUTE": "100000", "RATE_LIMIT_AUTH_PER_MINUTE": "100000", "RATE_LIMIT_SESSION_PER_MINUTE": "100000",
        "HEALTH_CHECK_INTERVAL_SECONDS": "3600",
    ]

    /// An upstream that answers every request with `200 plans` and counts the requests it saw
    /// (apart from the gateway's own `/ready` polls).
    final class CountingUpstream: Sendable {
        let server: RawTCPServer
        let requests = Tally()
        private final class LastHead: Sendable {
            let value = Mutex<String?>(nil)
        }

        private let lastHead = LastHead()

        /// The `X-Forwarded-For` the last request came with.
        var lastForwardedFor: String? {
            lastHead.value.withLock { head in
                head?.components(separatedBy: "\r\n").first { $0.lowercased().hasPrefix("x-forwarded-for:") }
                    .map { String($0.dropFirst("x-forwarded-for:".count)).trimmingCharacters(in: .whitespaces) }
            }
        }

        init() throws {
            let requests = self.requests
            let lastHead = self.lastHead
            server = try RawTCPServer { connection in
                defer { connection.close() }
                while let head = connection.read(until: "\r\n\r\n") {
                    if !head.hasPrefix("GET /ready ") && !head.hasPrefix("GET /internal/") {
                        requests.add()
                        lastHead.value.withLock { $0 = head }
                    }
                    _ = connection.read(count: GatewayTransportTests.declaredLength(head))
                    let body = head.hasPrefix("HEAD ") ? "" : "plans"
                    connection.send("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n\(body)")
                }
            }
        }
    }

    /// The `Content-Length` a request head declares (0 without one).
    static func declaredLength(_ head: String) -> Int {
        head.lowercased().components(separatedBy: "\r\n").first { $0.hasPrefix("content-length:") }
            .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
    }

    /// Answers the gateway's own polls of an upstream (`/ready`, the internal feeds) with an empty
    /// 200; true when `head` was one.
    static func answeredOwnPoll(_ head: String, on connection: RawConnection) -> Bool {
        guard head.hasPrefix("GET /ready ") || head.hasPrefix("GET /internal/") else { return false }
        connection.send("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        return true
    }

    static func send(_ port: Int, _ text: String) async throws -> (status: Int, headers: [String: String], body: String)? {
        try await RawTCP.run {
            let client = try RawConnection.connect(port: port)
            defer { client.close() }
            client.send(text)
            return client.readResponse()
        }
    }

    @Test func slowLorisHeadsAndIdleConnectionsAreClosed() async throws {
        let upstream = try CountingUpstream()
        let overrides = Self.overrides.merging([
            "BILLING_URL": upstream.server.url, "TENANCY_URL": upstream.server.url, "HEADER_TIMEOUT_SECONDS": "1", "IDLE_TIMEOUT_SECONDS": "2", "BODY_TIMEOUT_SECONDS": "1",
        ]) { $1 }
        try await TestStack.with(.gateway, overrides: overrides) { stack in
            let port = stack.ports[.gateway]!
            // A head trickled a byte at a time: cut off about a second after it began.
            let trickled = try await RawTCP.run {
                let client = try RawConnection.connect(port: port)
                defer { client.close() }
                let started = Date()
                for byte in "GET /api/payments/plans HTTP/1.1\r\nHost: g\r\nX-Slow: yes".utf8 {
                    guard client.send([byte]) else { break }
                    Thread.sleep(forTimeInterval: 0.1)
                    if Date().timeIntervalSince(started) > 4 { break }
                }
                client.setReceiveTimeout(milliseconds: 5_000)
                return (client.waitForClose(), Date().timeIntervalSince(started))
            }
            #expect(trickled.0, "the gateway never closed a slow-loris connection")
            #expect(trickled.1 < 3, "closed after \(trickled.1) s, not about 1 s")
            // A connection that never sends anything: closed after the idle timeout.
            let idle = try await RawTCP.run {
                let client = try RawConnection.connect(port: port)
                defer { client.close() }
                let started = Date()
                client.setReceiveTimeout(milliseconds: 6_000)
                return (client.waitForClose(), Date().timeIntervalSince(started))
            }
            #expect(idle.0 && idle.1 > 1.5 && idle.1 < 4.5, "idle connection: closed \(idle.0) after \(idle.1) s")
            // A body trickled a byte at a time: 408 once the body's time is up, never forwarded.
            let body = try await RawTCP.run {
                let client = try RawConnection.connect(port: port)
                defer { client.close() }
                client.send("POST /api/onboarding/register HTTP/1.1\r\nHost: g\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
                for _ in 0..<30 where client.send(" ") { Thread.sleep(forTimeInterval: 0.1) }
                return client.readResponse()
            }
            #expect(body?.status == 408)
            #expect(body?.body.contains("REQUEST_TIMEOUT") == true)
            #expect(upstream.requests.count == 0)
            // Well-behaved clients are served throughout.
            #expect(try await Self.send(port, "GET /api/payments/plans HTTP/1.1\r\nHost: g\r\n\r\n")?.body == "plans")
        }
    }

    @Test func oversizedHeadsAre431() async throws {
        let upstream = try CountingUpstream()
        try await TestStack.with(.gateway, overrides: Self.overrides.merging(["BILLING_URL": upstream.server.url]) { $1 }) { stack in
            let port = stack.ports[.gateway]!
            let heads = [
                "GET /api/payments/plans HTTP/1.1\r\nHost: g\r\nX-Big: " + String(repeating: "a", count: 40_000) + "\r\n\r\n",
                "GET /api/payments/plans HTTP/1.1\r\nHost: g\r\n" + (0..<3_000).map { "X-Filler-\($0): value\r\n" }.joined() + "\r\n",
            ]
            for head in heads {
                let answer = try await Self.send(port, head)
                #expect(answer?.status == 431)
                #expect(answer?.body.contains(#""code":"HEADERS_TOO_LARGE""#) == true, "\(answer?.body ?? "no answer")")
                #expect(answer?.headers["connection"] == "close")
            }
            #expect(upstream.requests.count == 0)
            #expect(try await Self.send(port, "GET /api/payments/plans HTTP/1.1\r\nHost: g\r\n\r\n")?.status == 200)
            #expect(upstream.requests.count == 1)
        }
    }

    @Test func requestSmugglingShapesAreRefusedAndNeverForwarded() async throws {
        let upstream = try CountingUpstream()
        let overrides = Self.overrides.merging(["TENANCY_URL": upstream.server.url, "BILLING_URL": upstream.server.url]) { $1 }
        try await TestStack.with(.gateway, overrides: overrides) { stack in
            let port = stack.ports[.gateway]!
            let post = "POST /api/onboarding/register HTTP/1.1\r\nHost: g\r\nContent-Type: application/json\r\n"
            let smuggled = "GET /api/payments/plans HTTP/1.1\r\nHost: g\r\n\r\n"
            let shapes: [(String, String)] = [
                ("Content-Length and Transfer-Encoding", post + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled),
                ("Transfer-Encoding and Content-Length", post + "Transfer-Encoding: chunked\r\nContent-Length: 60\r\n\r\n0\r\n\r\n" + smuggled),
                ("two different Content-Lengths", post + "Content-Length: 2\r\nContent-Length: 50\r\n\r\n{}" + smuggled),
                ("two equal Content-Lengths", post + "Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}" + smuggled),
                ("obsolete line folding", post + "Content-Length: 2\r\nX-Folded: a\r\n b\r\n\r\n{}"),
                ("folded Transfer-Encoding", post + "Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n" + smuggled),
                ("space before the colon", post + "Content-Length : 2\r\n\r\n{}"),
                ("chunked not last", post + "Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" + smuggled),
                ("bad chunk size", post + "Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"),
            ]
            for (name, request) in shapes {
                let answer = try await RawTCP.run {
                    let client = try RawConnection.connect(port: port)
                    defer { client.close() }
                    client.send(request)
                    let answer = client.readResponse()
                    client.setReceiveTimeout(milliseconds: 3_000)
                    return (answer, client.waitForClose())
                }
                #expect(answer.0?.status == 400, "\(name): \(answer.0.map { "\($0.status) \($0.body)" } ?? "no answer")")
                #expect(answer.0?.body.contains(#""code":"MALFORMED_REQUEST""#) == true, "\(name)")
                #expect(answer.1, "\(name): the connection stayed open")
            }
            #expect(upstream.requests.count == 0, "a malformed request reached the upstream")
        }
    }

    @Test func anUpstreamLeavingMidAnswerIsNeverPassedOffAsAWholeAnswer() async throws {
        let cut = try RawTCPServer { connection in
            _ = connection.read(until: "\r\n\r\n")
            if Bool.random() {
                connection.send("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n0123456789")
            } else {
                connection.send("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n")
            }
            Thread.sleep(forTimeInterval: 0.05)
            connection.reset()
        }
        let healthy = try CountingUpstream()
        let overrides = Self.overrides.merging(["BILLING_URL": cut.url, "TENANCY_URL": healthy.server.url]) { $1 }
        try await TestStack.with(.gateway, overrides: overrides) { stack in
            let port = stack.ports[.gateway]!
            for _ in 0..<6 {
                let received = try await RawTCP.run {
                    let client = try RawConnection.connect(port: port)
                    defer { client.close() }
                    client.send("GET /api/payments/plans HTTP/1.1\r\nHost: g\r\n\r\n")
                    var bytes: [UInt8] = []
                    while let more = client.readSome() { bytes += more }
                    return String(decoding: bytes, as: UTF8.self)
                }
                #expect(received.hasPrefix("HTTP/1.1 200"))
                #expect(received.contains("0123456789"))
                // Neither the declared length nor the last chunk ever arrives: the client sees a cut.
                let body = received.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n")
                #expect(body.utf8.count < 100 && !body.hasSuffix("0\r\n\r\n"), "\(received)")
            }
            let register = try await TestHTTP.send(.POST, stack.url(.gateway) + "/api/onboarding/register", body: "{}")
            #expect(register.text == "plans")
        }
    }

    @Test func aKeptAliveConnectionClosingAsItIsReusedResendsOnlyWhatMayBeSentTwice() async throws {
        // Each upstream connection answers its first request and closes on reading its second, as
        // an upstream whose idle timer fires just as the gateway reuses the connection. The
        // gateway then holds a request the upstream may or may not have acted on.
        let gets = Tally()
        let posts = Tally()
        let keyedPosts = Tally()
        let upstream = try RawTCPServer { connection in
            defer { connection.close() }
            var served = 0
            while let head = connection.read(until: "\r\n\r\n") {
                if Self.answeredOwnPoll(head, on: connection) { continue }
                if head.hasPrefix("GET ") {
                    gets.add()
                } else if head.lowercased().contains("\r\nidempotency-key:") {
                    keyedPosts.add()
                } else {
                    posts.add()
                }
                _ = connection.read(count: Self.declaredLength(head))
                served += 1
                guard served == 1 else { return }
                connection.send("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nplans")
            }
        }
        let overrides = Self.overrides.merging(["BILLING_URL": upstream.url, "TENANCY_URL": upstream.url]) { $1 }
        try await TestStack.with(.gateway, overrides: overrides) { stack in
            let port = stack.ports[.gateway]!
            // One client connection throughout: one event loop, so one pool of upstream connections.
            let answers = try await RawTCP.run {
                let client = try RawConnection.connect(port: port)
                defer { client.close() }
                let get = "GET /api/payments/plans HTTP/1.1\r\nHost: g\r\n\r\n"
                let post = "POST /api/onboarding/register HTTP/1.1\r\nHost: g\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
                var answers: [(status: Int, headers: [String: String], body: String)?] = []
                // Connections are pooled per upstream service: billing's GETs, then tenancy's POSTs.
                let keyed = post + "Idempotency-Key: k-1\r\n\r\n{}"
                for request in [
                    get, get,  // a new connection (answered), then the same one (closed): sent again on a new one
                    keyed,  // a new connection (answered)
                    post + "\r\n{}",  // the same one (closed): not sent twice
                    keyed, keyed,  // a new connection (answered), then the same one (closed): sent again
                ] {
                    client.send(request)
                    answers.append(client.readResponse())
                }
                return answers
            }
            #expect(answers.map { $0?.status } == [200, 200, 200, 503, 200, 200])
            #expect(answers.map { $0?.body == "plans" } == [true, true, true, false, true, true])
            #expect(answers[3]?.body.contains("UPSTREAM_UNAVAILABLE") == true, "\(answers[3]?.body ?? "no answer")")
            #expect(gets.count == 3)
            #expect(posts.count == 1)
            #expect(keyedPosts.count == 4)
        }
    }

    @Test func aMalformedUpstreamAnswerIs503AndItsRequestIsNeverSentTwice() async throws {
        // The first request on a connection is answered well; the second with two lengths, which the
        // gateway refuses to relay. A kept-alive connection closed as it was reused would have its
        // request sent again; one that answered (badly) must not: the upstream read that request.
        let requests = Tally()
        let upstream = try RawTCPServer { connection in
            defer { connection.close() }
            var served = 0
            while let head = connection.read(until: "\r\n\r\n") {
                if Self.answeredOwnPoll(head, on: connection) { continue }
                requests.add()
                served += 1
                if served == 1 {
                    connection.send("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nplans")
                } else {
                    connection.send("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nplans!")
                    return
                }
            }
        }
        try await TestStack.with(.gateway, overrides: Self.overrides.merging(["BILLING_URL": upstream.url]) { $1 }) { stack in
            let port = stack.ports[.gateway]!
            let (first, second) = try await RawTCP.run {
                let client = try RawConnection.connect(port: port)
                defer { client.close() }
                client.send("GET /api/payments/plans HTTP/1.1\r\nHost: g\r\n\r\n")
                let first = client.readResponse()
                client.send("GET /api/payments/plans HTTP/1.1\r\nHost: g\r\n\r\n")
                return (first, client.readResponse())
            }
            #expect(first?.status == 200 && first?.body == "plans")
            #expect(second?.status == 503, "\(second.map { "\($0.status) \($0.body)" } ?? "no answer")")
            #expect(second?.body.contains("plans") == false)
            #expect(requests.count == 2)
        }
    }

    @Test func streamsFlowAsSentAndAClientLeavingCancelsTheUpstreamRequest() async throws {
        let upstreamSawClose = Tally()
        let stream = try RawTCPServer { connection in
            defer { connection.close() }
            _ = connection.read(until: "\r\n\r\n")
            connection.send("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
            let event = "data: tick\n\n"
            let chunk = String(event.utf8.count, radix: 16) + "\r\n" + event + "\r\n"
            for index in 0..<100 {
                // The first event, then a pause that tells whether it was held back.
                Thread.sleep(forTimeInterval: index == 1 ? 2.0 : 0.05)
                if !connection.send(chunk) {
                    upstreamSawClose.add()
                    return
                }
            }
        }
        try await TestStack.with(.gateway, overrides: Self.overrides.merging(["CHAT_URL": stream.url]) { $1 }) { stack in
            let port = stack.ports[.gateway]!
            let firstEventAfter = try await RawTCP.run {
                let client = try RawConnection.connect(port: port)
                let started = Date()
                client.send("POST /api/sessions/init HTTP/1.1\r\nHost: g\r\nContent-Type: application/json\r\nX-Tenant-Slug: acme\r\nContent-Length: 2\r\n\r\n{}")
                var received = ""
                while !received.contains("data: tick"), let more = client.readSome() { received += String(decoding: more, as: UTF8.self) }
                let elapsed = Date().timeIntervalSince(started)
                client.close()
                return elapsed
            }
            // Held back, it would come after the 2 s pause; the margin is for a machine busy with every other test.
            #expect(firstEventAfter < 1.5, "the first event took \(firstEventAfter) s: held back instead of streamed")
            let deadline = ContinuousClock.now + .seconds(5)
            while upstreamSawClose.count == 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
            #expect(upstreamSawClose.count == 1, "the upstream kept streaming to a client that had left")
        }
    }

    @Test func pipelinedHeadAndExpectContinueRequestsAreAnsweredInOrder() async throws {
        let upstream = try CountingUpstream()
        let overrides = Self.overrides.merging(["BILLING_URL": upstream.server.url, "TENANCY_URL": upstream.server.url]) { $1 }
        try await TestStack.with(.gateway, overrides: overrides) { stack in
            let port = stack.ports[.gateway]!
            let answers = try await RawTCP.run {
                let client = try RawConnection.connect(port: port)
                defer { client.close() }
                // Three requests in one write: answered in order on the one connection.
                client.send(
                    "GET /api/payments/plans HTTP/1.1\r\nHost: g\r\nX-Request-ID: first\r\n\r\n"
                        + "GET /live HTTP/1.1\r\nHost: g\r\nX-Request-ID: second\r\n\r\n"
                        + "HEAD /api/payments/plans HTTP/1.1\r\nHost: g\r\nX-Request-ID: third\r\n\r\n"
                )
                let first = client.readResponse()
                let second = client.readResponse()
                // HEAD: the length of the GET, no body.
                let third = client.read(until: "\r\n\r\n")
                // Expect: 100-continue is answered before the body is sent.
                client.send("POST /api/onboarding/register HTTP/1.1\r\nHost: g\r\nContent-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
                let interim = client.read(until: "\r\n\r\n")
                client.send("{}")
                let fourth = client.readResponse()
                return (first, second, third, interim, fourth)
            }
            #expect(answers.0?.body == "plans")
            #expect(answers.0?.headers["x-request-id"] == "first")
            #expect(answers.1?.body.contains(#""status":"alive""#) == true)
            #expect(answers.1?.headers["x-request-id"] == "second")
            #expect(answers.2?.hasPrefix("HTTP/1.1 200") == true)
            #expect(answers.2?.lowercased().contains("content-length: 5") == true)
            #expect(answers.2?.lowercased().contains("x-request-id: third") == true)
            #expect(answers.3?.hasPrefix("HTTP/1.1 100") == true, "\(answers.3 ?? "no interim answer")")
            #expect(answers.4?.status == 200 && answers.4?.body == "plans")
            #expect(upstream.requests.count == 3)
        }
    }

    @Test func tenThousandIdleConnectionsDoNotStopTheGateway() async throws {
        // The gateway runs as its own process, as deployed, with its own descriptor limit.
        let stack = try await TestStack.make(overrides: Self.overrides.merging(["IDLE_TIMEOUT_SECONDS": "120"]) { $1 })
        let children = try ChildServices(stack: stack)
        try await children.start(.gateway)
        defer { children.stopAll() }
        let port = stack.ports[.gateway]!
        let result = try await RawTCP.run {
            var idle: [RawConnection] = []
            defer { for connection in idle { connection.close() } }
            for _ in 0..<10_000 {
                guard let connection = try? RawConnection.connect(port: port) else { break }
                idle.append(connection)
            }
            let opened = idle.count
            let started = Date()
            let client = try RawConnection.connect(port: port)
            defer { client.close() }
            client.send("GET /live HTTP/1.1\r\nHost: g\r\n\r\n")
            let answer = client.readResponse()
            return (opened, answer?.status, Date().timeIntervalSince(started))
        }
        #expect(result.0 == 10_000, "only \(result.0) connections could be opened")
        #expect(result.1 == 200)
        #expect(result.2 < 2, "answered after \(result.2) s")
        let rss = children.residentMegabytes(.gateway)
        #expect(rss != nil && rss! < 400, "gateway RSS with 10,000 idle connections: \(rss.map { "\($0) MiB" } ?? "unknown")")
    }

    @Test(arguments: [false, true])
    func forwardedForIsBelievedOnlyFromTrustedProxies(trusted: Bool) async throws {
        let upstream = try CountingUpstream()
        var overrides = Self.overrides.merging(["BILLING_URL": upstream.server.url, "RATE_LIMIT_PUBLIC_PER_MINUTE": "3"]) { $1 }
        if trusted { overrides["TRUSTED_PROXIES"] = "10.0.0.0/8, 127.0.0.1" }
        try await TestStack.with(.gateway, overrides: overrides) { stack in
            let url = stack.url(.gateway) + "/api/payments/plans"
            var statuses: [Int] = []
            // Each request claims another client, behind what would be a trusted hop (10.0.0.1).
            for index in 0..<6 {
                let response = try await TestHTTP.send(.GET, url, headers: ["X-Forwarded-For": "203.0.113.\(index), 10.0.0.1"])
                statuses.append(response.status)
            }
            if trusted {
                // Behind a trusted proxy each claimed client has its own limit, and the chain is kept.
                #expect(statuses == Array(repeating: 200, count: 6))
                #expect(upstream.lastForwardedFor == "203.0.113.5, 10.0.0.1, 127.0.0.1")
            } else {
                // From anyone else the header changes nothing: the peer is limited, and the header is replaced.
                #expect(statuses == [200, 200, 200, 429, 429, 429])
                #expect(upstream.lastForwardedFor == "127.0.0.1")
            }
            // IPv6 clients behind a trusted proxy are counted by /64: rotating the host half buys nothing.
            if trusted {
                var v6: [Int] = []
                for index in 0..<5 {
                    v6.append(try await TestHTTP.send(.GET, url, headers: ["X-Forwarded-For": "2001:db8:1:2::\(index + 1)"]).status)
                }
                #expect(v6 == [200, 200, 200, 429, 429])
            }
        }
    }

    @Test func aFloodOfClientAddressesNeitherGrowsMemoryNorResetsAnyonesLimit() async throws {
        let upstream = try CountingUpstream()
        let overrides = Self.overrides.merging([
            "BILLING_URL": upstream.server.url, "TRUSTED_PROXIES": "127.0.0.1", "RATE_LIMIT_PUBLIC_PER_MINUTE": "5", "RATE_LIMIT_MAX_KEYS": "64",
        ]) { $1 }
        try await TestStack.with(.gateway, overrides: overrides) { stack in
            let url = stack.url(.gateway) + "/api/payments/plans"
            let victim = ["X-Forwarded-For": "192.0.2.1"]
            // The victim's count must still be whole at the end: past a minute's edge its weight
            // decays (a sliding window), and a loaded run takes over 20 s.
            try await SharedLimitsTests.waitForRoomInTheWindow(30)
            for _ in 0..<5 { #expect(try await TestHTTP.send(.GET, url, headers: victim).status == 200) }
            #expect(try await TestHTTP.send(.GET, url, headers: victim).status == 429)
            // 1,000 made-up clients, far more than the limiter remembers.
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                var statuses: [Int] = []
                for index in 0..<1_000 {
                    group.addTask {
                        try await TestHTTP.send(.GET, url, headers: ["X-Forwarded-For": "10.\(index / 65_536).\(index / 256 % 256).\(index % 256)"]).status
                    }
                    if index >= 8 { statuses.append(try await group.next()!) }
                }
                for try await status in group { statuses.append(status) }
                return statuses
            }
            #expect(statuses.count == 1_000)
            #expect(statuses.contains(429), "the addresses that found no room share one counter, which the flood used up")
            // The victim's live counter survived the flood: still refused, not reset to a fresh window.
            #expect(try await TestHTTP.send(.GET, url, headers: victim).status == 429)
        }
    }

    @Test func everyAnswerOnAKeptAliveConnectionIsCountedUnderItsOwnLabels() async throws {
        let upstream = try CountingUpstream()
        try await TestStack.with(.gateway, overrides: Self.overrides.merging(["BILLING_URL": upstream.server.url]) { $1 }) { stack in
            let port = stack.ports[.gateway]!
            // One connection, so its handler's kept metric handles are used and must change with
            // the method, route and status.
            let statuses = try await RawTCP.run {
                let client = try RawConnection.connect(port: port)
                defer { client.close() }
                var statuses: [Int] = []
                for request in [
                    "GET /api/payments/plans", "GET /api/payments/plans", "GET /api/nowhere", "GET /api/payments/plans",
                    "HEAD /api/payments/plans", "GET /api/payments/plans",
                ] {
                    client.send(request + " HTTP/1.1\r\nHost: g\r\n\r\n")
                    guard let head = client.read(until: "\r\n\r\n") else { break }
                    let status = Int(head.split(separator: " ")[1]) ?? 0
                    if !request.hasPrefix("HEAD ") { _ = client.read(count: GatewayTransportTests.declaredLength(head)) }
                    statuses.append(status)
                }
                return statuses
            }
            #expect(statuses == [200, 200, 404, 200, 200, 200])
            let metrics = try await TestHTTP.send(.GET, stack.adminURL + "/metrics").text
            func count(_ method: String, _ route: String, _ status: Int) -> Int? {
                metrics.split(separator: "\n").first {
                    $0.hasPrefix("http_requests_total{") && $0.contains(#"method="\#(method)""#) && $0.contains(#"route="\#(route)""#)
                        && $0.contains(#"status="\#(status)""#)
                }.flatMap { $0.split(separator: " ").last.flatMap { Int($0) } }
            }
            #expect(count("GET", "proxy:billing", 200) == 4)
            #expect(count("HEAD", "proxy:billing", 200) == 1)
            #expect(count("GET", "NotFound", 404) == 1)
        }
    }

    @Test func publicAndAdminPortsAnswerWhatIsTheirs() async throws {
        let upstream = try CountingUpstream()
        let overrides = Self.overrides.merging([
            "BILLING_URL": upstream.server.url, "CORS_ORIGINS": "*, https://app.example.com", "AUTH_URL": upstream.server.url,
        ]) { $1 }
        try await TestStack.with(.gateway, overrides: overrides) { stack in
            let gateway = stack.url(.gateway)
            _ = try await TestHTTP.send(.GET, gateway + "/api/payments/plans")
            #expect(try await TestHTTP.send(.GET, gateway + "/metrics").status == 404)
            let health = try await TestHTTP.send(.GET, gateway + "/health")
            #expect(health.status == 200 && !health.text.contains("upstreams") && !health.text.contains(upstream.server.url))
            let metrics = try await TestHTTP.send(.GET, stack.adminURL + "/metrics")
            #expect(metrics.status == 200 && metrics.text.contains(#"route="proxy:billing""#))
            let detailed = try await TestHTTP.send(.GET, stack.adminURL + "/health")
            #expect(detailed.text.contains("upstreams"))

            // CORS: a listed origin is echoed with credentials; any other gets `*`, never with credentials.
            let listed = try await TestHTTP.send(.GET, gateway + "/api/payments/plans", headers: ["Origin": "https://app.example.com"])
            #expect(listed.headers.first(name: "access-control-allow-origin") == "https://app.example.com")
            #expect(listed.headers.first(name: "access-control-allow-credentials") == "true")
            let other = try await TestHTTP.send(.GET, gateway + "/api/payments/plans", headers: ["Origin": "https://evil.example"])
            #expect(other.headers.first(name: "access-control-allow-origin") == "*")
            #expect(other.headers.first(name: "access-control-allow-credentials") == nil)
            let preflight = try await TestHTTP.send(
                .OPTIONS, gateway + "/api/payments/plans",
                headers: ["Origin": "https://app.example.com", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type, authorization"]
            )
            #expect(preflight.status == 204)
            #expect(preflight.headers.first(name: "access-control-allow-methods") == CORSPolicy.allowedMethods.joined(separator: ", "))
            let badMethod = try await TestHTTP.send(
                .OPTIONS, gateway + "/api/payments/plans", headers: ["Origin": "https://app.example.com", "Access-Control-Request-Method": "TRACE"]
            )
            #expect(badMethod.status == 403)
            #expect(try badMethod.error().code == "CORS_METHOD_NOT_ALLOWED")
            let badHeader = try await TestHTTP.send(
                .OPTIONS, gateway + "/api/payments/plans",
                headers: ["Origin": "https://app.example.com", "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "x-evil"]
            )
            #expect(badHeader.status == 403)
            #expect(try badHeader.error().code == "CORS_HEADER_NOT_ALLOWED")

            // Answers to credential endpoints are never cached.
            let login = try await TestHTTP.send(.POST, gateway + "/api/auth/login", body: "{}")
            #expect(login.headers.first(name: "cache-control") == "no-store", "\(login.status): \(login.text)")
            // Nor are the gateway's own error answers, on any route.
            let refused = try await TestHTTP.send(.GET, gateway + "/api/auth/me")
            #expect(refused.status == 401)
            #expect(refused.headers.first(name: "cache-control") == "no-store")
        }
    }
}
