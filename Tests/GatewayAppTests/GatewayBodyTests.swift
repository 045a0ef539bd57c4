import Foundation
import NIOHTTP1
import ServiceCore
import TestSupport
import Testing

@testable import GatewayApp

/// Request bodies through the gateway when the client or the upstream misbehaves mid-body.
///
/// The gateway once crashed here: an upstream answered before the whole body had been forwarded,
/// the response went out, and Hummingbird began draining the body while AsyncHTTPClient was still
/// reading it (see `ForwardedBody`). Each test drives the exact interleaving with raw sockets on
/// both sides, then proves the gateway still answers.
@Suite("gateway request bodies", .timeLimit(.minutes(2)))
struct GatewayBodyTests {
    /// How a scripted upstream treats a request with a body.
    enum Upstream {
        /// Answers 200 `early` as soon as it has the head, then reads and discards the body.
        case answersEarly
        /// Reads the head and a little of the body, then resets the connection.
        case resetsMidBody
        /// Reads the whole body (by `Content-Length` or chunked) and answers with its size.
        case readsWhole
    }

    /// A scripted upstream; counts the requests whose body it received in full.
    final class ScriptedUpstream: Sendable {
        let server: RawTCPServer
        private let completeBodies: Tally

        var completed: Int { completeBodies.count }

        init(_ behaviour: Upstream) throws {
            let completeBodies = Tally()
            self.server = try RawTCPServer { connection in
                defer { connection.close() }
                while let head = connection.read(until: "\r\n\r\n") {
                    if head.hasPrefix("GET ") {
                        connection.send("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                        continue
                    }
                    let lower = head.lowercased()
                    let length = lower.components(separatedBy: "\r\n")
                        .first { $0.hasPrefix("content-length:") }
                        .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) }
                    switch behaviour {
                    case .answersEarly:
                        connection.send("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nearly")
                        if let length { _ = connection.read(count: length) }
                    case .resetsMidBody:
                        _ = connection.read(count: min(length ?? 1_000, 1_000))
                        connection.reset()
                        return
                    case .readsWhole:
                        var received = 0
                        if let length {
                            received = connection.read(count: length).count
                            guard received == length else { return }
                        } else {
                            guard let chunked = connection.read(until: "\r\n0\r\n\r\n") else { return }
                            received = chunked.utf8.count
                        }
                        completeBodies.add()
                        connection.send("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: \(String(received).utf8.count)\r\n\r\n\(received)")
                    }
                }
            }
            self.completeBodies = completeBodies
        }
    }

    static let overrides = [
        "RATE_LIMIT_PUBLIC_PER_MINUTE": "100000", "RATE_LIMIT_AUTH_PER_MINUTE": "100000", "RATE_LIMIT_SESSION_PER_MINUTE": "100000", "HEALTH_CHECK_INTERVAL_SECONDS": "3600",
    ]

    /// A POST to an open chat route, as raw bytes: the head, then `prefix` bytes of a `length`-byte body.
    static func head(length: Int, path: String = "/api/sessions/init") -> String {
        "POST \(path) HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\nX-Tenant-Slug: acme\r\nContent-Length: \(length)\r\n\r\n"
    }

    static func filler(_ count: Int) -> String { String(repeating: " ", count: count) }

    /// The gateway answers its own routes and proxies to the well-behaved upstream at `TENANCY_URL`.
    static func expectGatewayAnswers(_ stack: TestStack, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let live = try await TestHTTP.send(.GET, stack.url(.gateway) + "/live")
        #expect(live.status == 200, sourceLocation: sourceLocation)
        let proxied = try await TestHTTP.send(.POST, stack.url(.gateway) + "/api/onboarding/register", body: #"{"n":1}"#)
        #expect(proxied.status == 200, sourceLocation: sourceLocation)
        #expect(proxied.text == "7", sourceLocation: sourceLocation)
    }

    @Test(arguments: ["0", "1048576"])
    func upstreamAnswersBeforeTheBodyIsForwarded(bufferBytes: String) async throws {
        let early = try ScriptedUpstream(.answersEarly)
        let healthy = try ScriptedUpstream(.readsWhole)
        let overrides = Self.overrides.merging(["CHAT_URL": early.server.url, "TENANCY_URL": healthy.server.url, "BODY_BUFFER_BYTES": bufferBytes]) { $1 }
        try await TestStack.with(.gateway, overrides: overrides) { stack in
            let port = stack.ports[.gateway]!
            for _ in 0..<20 {
                let answer = try await RawTCP.run {
                    let client = try RawConnection.connect(port: port)
                    defer { client.close() }
                    client.send(Self.head(length: 200_000) + Self.filler(10_000))
                    // Relayed: the upstream answers now, while most of the body is still to come.
                    // Buffered: the gateway waits for the rest, which comes after a pause.
                    if bufferBytes != "0" { Thread.sleep(forTimeInterval: 0.05) }
                    for _ in 0..<19 where client.send(Self.filler(10_000)) {}
                    return client.readResponse()
                }
                #expect(answer?.status == 200)
                #expect(answer?.body == "early")
            }
            try await Self.expectGatewayAnswers(stack)
        }
    }

    @Test(arguments: ["0", "1048576"])
    func upstreamResetsMidBody(bufferBytes: String) async throws {
        let resetting = try ScriptedUpstream(.resetsMidBody)
        let healthy = try ScriptedUpstream(.readsWhole)
        let overrides = Self.overrides.merging([
            "CHAT_URL": resetting.server.url, "TENANCY_URL": healthy.server.url, "BODY_BUFFER_BYTES": bufferBytes,
        ]) { $1 }
        try await TestStack.with(.gateway, overrides: overrides) { stack in
            let port = stack.ports[.gateway]!
            for _ in 0..<10 {
                let answer = try await RawTCP.run {
                    let client = try RawConnection.connect(port: port)
                    defer { client.close() }
                    client.send(Self.head(length: 100_000))
                    for _ in 0..<10 where client.send(Self.filler(10_000)) { Thread.sleep(forTimeInterval: 0.005) }
                    return client.readResponse()
                }
                #expect(answer?.status == 503)
                #expect(answer?.body.contains(#""code":"UPSTREAM_UNAVAILABLE""#) == true, "\(answer?.body ?? "no answer")")
            }
            try await Self.expectGatewayAnswers(stack)
        }
    }

    @Test(arguments: ["0", "1048576"])
    func clientDisconnectsMidBody(bufferBytes: String) async throws {
        let upstream = try ScriptedUpstream(.readsWhole)
        let overrides = Self.overrides.merging([
            "CHAT_URL": upstream.server.url, "TENANCY_URL": upstream.server.url, "BODY_BUFFER_BYTES": bufferBytes,
        ]) { $1 }
        try await TestStack.with(.gateway, overrides: overrides) { stack in
            let port = stack.ports[.gateway]!
            for _ in 0..<10 {
                try await RawTCP.run {
                    let client = try RawConnection.connect(port: port)
                    client.send(Self.head(length: 100_000) + Self.filler(30_000))
                    Thread.sleep(forTimeInterval: 0.02)
                    client.reset()
                }
            }
            try await Task.sleep(for: .milliseconds(200))
            // No truncated body ever reached the upstream as a whole request.
            #expect(upstream.completed == 0)
            try await Self.expectGatewayAnswers(stack)
            #expect(upstream.completed == 1)
        }
    }

    @Test func bodyShorterThanItsContentLengthTimesOut() async throws {
        let upstream = try ScriptedUpstream(.readsWhole)
        let overrides = Self.overrides.merging([
            "CHAT_URL": upstream.server.url, "TENANCY_URL": upstream.server.url, "BODY_TIMEOUT_SECONDS": "1",
        ]) { $1 }
        try await TestStack.with(.gateway, overrides: overrides) { stack in
            let port = stack.ports[.gateway]!
            let started = ContinuousClock.now
            let (answer, closed) = try await RawTCP.run {
                let client = try RawConnection.connect(port: port)
                defer { client.close() }
                client.send(Self.head(length: 1_000) + "{\"a\":")
                let answer = client.readResponse()
                return (answer, client.isClosedByPeer())
            }
            let waited = ContinuousClock.now - started
            #expect(answer?.status == 408)
            #expect(answer?.body.contains(#""code":"REQUEST_TIMEOUT""#) == true)
            #expect(closed)
            #expect(waited >= .milliseconds(900) && waited < .seconds(5), "\(waited)")
            #expect(upstream.completed == 0)
            try await Self.expectGatewayAnswers(stack)
        }
    }

    @Test(arguments: ["0", "1048576"])
    func oversizedBodiesAreRefusedWithOrWithoutALength(bufferBytes: String) async throws {
        let upstream = try ScriptedUpstream(.readsWhole)
        let overrides = Self.overrides.merging([
            "CHAT_URL": upstream.server.url, "TENANCY_URL": upstream.server.url, "MAX_BODY_BYTES": "4096", "BODY_BUFFER_BYTES": bufferBytes,
        ]) { $1 }
        try await TestStack.with(.gateway, overrides: overrides) { stack in
            let port = stack.ports[.gateway]!
            let declared = try await RawTCP.run {
                let client = try RawConnection.connect(port: port)
                defer { client.close() }
                client.send(Self.head(length: 5_000))
                return client.readResponse()
            }
            #expect(declared?.status == 413)
            #expect(declared?.body.contains(#""code":"PAYLOAD_TOO_LARGE""#) == true)

            let chunked = try await RawTCP.run {
                let client = try RawConnection.connect(port: port)
                defer { client.close() }
                client.send(
                    "POST /api/sessions/init HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                )
                for _ in 0..<8 where client.send("400\r\n" + Self.filler(1_024) + "\r\n") {}
                client.send("0\r\n\r\n")
                return client.readResponse()
            }
            #expect(chunked?.status == 413)
            #expect(chunked?.body.contains(#""code":"PAYLOAD_TOO_LARGE""#) == true)
            #expect(upstream.completed == 0)

            // Within the limit, a chunked body goes through whole.
            let small = try await RawTCP.run {
                let client = try RawConnection.connect(port: port)
                defer { client.close() }
                client.send(
                    "POST /api/sessions/init HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                        + "2\r\n{}\r\n0\r\n\r\n"
                )
                return client.readResponse()
            }
            #expect(small?.status == 200)
            #expect(upstream.completed == 1)
            try await Self.expectGatewayAnswers(stack)
        }
    }
}
