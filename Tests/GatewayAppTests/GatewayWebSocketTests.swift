import Foundation
import NIOHTTP1
import ServiceCore
import TestSupport
import Testing

@testable import GatewayApp

/// WebSocket upgrades through the gateway to a real WebSocket echo server: admitted like any
/// request, then tunnelled both ways; refused ones get a completed handshake and close code 1008.
@Suite("gateway WebSockets", .timeLimit(.minutes(2)))
struct GatewayWebSocketTests {
    static let path = "/api/payments/subscription"

    static func withGateway(_ body: @escaping @Sendable (TestStack, WebSocketEchoServer, TokenForge) async throws -> Void) async throws {
        let echo = try await WebSocketEchoServer.start()
        let overrides = ["BILLING_URL": "http://127.0.0.1:\(echo.port)", "HEALTH_CHECK_INTERVAL_SECONDS": "3600"]
        do {
            try await TestStack.with(.auth, .gateway, overrides: overrides) { stack in
                try await body(stack, echo, try await TokenForge.fromAuthDatabase(stack.databases[.auth]!))
            }
        } catch {
            try? await echo.stop()
            throw error
        }
        try await echo.stop()
    }

    @Test func anAdmittedUpgradeIsTunnelledBothWays() async throws {
        try await Self.withGateway { stack, echo, forge in
            let token = try await forge.sign()
            let port = stack.ports[.gateway]!
            let (response, echoed, big, sameSegment) = try await RawTCP.run {
                let client = try WebSocketTestClient.connect(port: port)
                defer { client.close() }
                // A frame sent in the same write as the upgrade request must survive the switch.
                let early = WebSocketTestClient.maskedFrame(opcode: 0x1, payload: Array("early".utf8))
                let response = try client.handshake(path: Self.path + "?x=1", headers: [("Authorization", "Bearer \(token)")], trailing: early)
                let sameSegment = try client.readFrame().text
                try client.send(text: "hello through the gateway")
                let echoed = try client.readFrame().text
                let payload = String(repeating: "ab", count: 100_000)
                try client.send(text: payload)
                let big = try client.readFrame().text == payload
                try client.sendClose(code: 1000)
                return (response, echoed, big, sameSegment)
            }
            #expect(response.status == 101)
            #expect(response.value("sec-websocket-accept") != nil)
            #expect(response.value("x-request-id") != nil)
            #expect(sameSegment == "early")
            #expect(echoed == "hello through the gateway")
            #expect(big)
            let seen = try #require(echo.upgradeRequests.last)
            #expect(seen.uri == Self.path + "?x=1")
            #expect(seen.headers.first(name: "authorization") == "Bearer \(token)")
            #expect(seen.headers.first(name: "x-forwarded-for") == "127.0.0.1")
        }
    }

    @Test func aQueryTokenIsAcceptedAndForwardedAsAHeader() async throws {
        try await Self.withGateway { stack, echo, forge in
            let token = try await forge.sign()
            let port = stack.ports[.gateway]!
            let echoed = try await RawTCP.run {
                let client = try WebSocketTestClient.connect(port: port)
                defer { client.close() }
                let response = try client.handshake(path: Self.path + "?token=\(token)&room=7")
                guard response.status == 101 else { return "status \(response.status)" }
                try client.send(text: "ping")
                return try client.readFrame().text
            }
            #expect(echoed == "ping")
            let seen = try #require(echo.upgradeRequests.last)
            #expect(seen.uri == Self.path + "?room=7", "the token stays out of the upstream's request line")
            #expect(seen.headers.first(name: "authorization") == "Bearer \(token)")
        }
    }

    @Test func aRefusedUpgradeGetsCloseCode1008AndNeverReachesTheUpstream() async throws {
        try await Self.withGateway { stack, echo, forge in
            let port = stack.ports[.gateway]!
            let expired = try await forge.expired()
            for headers in [[], [("Authorization", "Bearer not-a-token")], [("Authorization", "Bearer \(expired)")]] {
                let (response, frame, closed) = try await RawTCP.run {
                    let client = try WebSocketTestClient.connect(port: port)
                    defer { client.close() }
                    let response = try client.handshake(path: Self.path, headers: headers)
                    let frame = try client.readFrame()
                    return (response, frame, client.waitForClose())
                }
                #expect(response.status == 101)
                #expect(frame.opcode == 0x8 && frame.closeCode == 1008, "\(headers): \(frame.opcode) \(frame.closeCode.map(String.init) ?? "-")")
                #expect(frame.closeReason.contains("TOKEN") || frame.closeReason.contains("UNAUTHORIZED"), "\(frame.closeReason)")
                #expect(closed)
            }
            #expect(echo.upgradeRequests.isEmpty)
        }
    }

    /// A tunnel is admitted once, at its upgrade; a logout must still end it, as it ends every other
    /// request with that token, and leave the user's other sessions' tunnels alone.
    @Test func aTunnelEndsWhenItsSessionIsLoggedOut() async throws {
        try await Self.withGateway { stack, echo, _ in
            let email = Fixtures.uniqueEmail()
            #expect(try await Fixtures.createOwner(authURL: stack.url(.auth), email: email).status == 201)
            let loggedOut = try await RevocationTests.login(stack, email)
            let kept = try await RevocationTests.login(stack, email)
            let port = stack.ports[.gateway]!
            let open = { (token: String) in
                try await RawTCP.run { () -> WebSocketTestClient in
                    let client = try WebSocketTestClient.connect(port: port, receiveTimeout: .seconds(10))
                    let response = try client.handshake(path: Self.path, headers: [("Authorization", "Bearer \(token)")])
                    guard response.status == 101 else { throw WebSocketTestError.malformed("upgrade answered \(response.status)") }
                    try client.send(text: "before")
                    guard try client.readFrame().text == "before" else { throw WebSocketTestError.malformed("no echo through the tunnel") }
                    return client
                }
            }
            let ending = try await open(loggedOut.accessToken)
            let staying = try await open(kept.accessToken)
            defer {
                ending.close()
                staying.close()
            }
            // Other connections to the upstream (a health probe) may come and go meanwhile: count from here.
            let closedBefore = echo.closedConnections
            let logout = try await TestHTTP.send(.POST, stack.url(.gateway) + "/api/auth/logout", headers: Fixtures.bearer(loggedOut.accessToken))
            #expect(logout.status == 200)
            let started = ContinuousClock.now
            let closed = try await RawTCP.run { ending.waitForClose() }
            let took = ContinuousClock.now - started
            #expect(closed, "the logged-out session's tunnel stayed open")
            #expect(took < .seconds(5), "the tunnel closed after \(took)")
            // The upstream side of the ended tunnel is closed too; the other session's tunnel still works.
            let deadline = ContinuousClock.now + .seconds(5)
            while echo.closedConnections < closedBefore + 1, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            #expect(echo.closedConnections >= closedBefore + 1, "the ended tunnel's upstream connection stayed open")
            let echoed = try await RawTCP.run {
                try staying.send(text: "after")
                return try staying.readFrame().text
            }
            #expect(echoed == "after")
        }
    }

    @Test func closingEitherSideClosesTheOther() async throws {
        try await Self.withGateway { stack, echo, forge in
            let token = try await forge.sign()
            let port = stack.ports[.gateway]!
            try await RawTCP.run {
                let client = try WebSocketTestClient.connect(port: port)
                _ = try client.handshake(path: Self.path, headers: [("Authorization", "Bearer \(token)")])
                try client.send(text: "one")
                _ = try client.readFrame()
                client.close()
            }
            let deadline = ContinuousClock.now + .seconds(5)
            while echo.closedConnections < 1, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            #expect(echo.closedConnections == 1, "the upstream side stayed open after the client left")
            // The upstream ending the conversation reaches the client as a close, then EOF.
            let (frame, closed) = try await RawTCP.run {
                let client = try WebSocketTestClient.connect(port: port)
                defer { client.close() }
                _ = try client.handshake(path: Self.path, headers: [("Authorization", "Bearer \(token)")])
                try client.sendClose(code: 1000, reason: "bye")
                return (try client.readFrame(), client.waitForClose())
            }
            #expect(frame.opcode == 0x8 && frame.closeCode == 1000)
            #expect(closed)
            // Ordinary requests still work on the same gateway.
            #expect(try await TestHTTP.send(.GET, stack.url(.gateway) + "/live").status == 200)
        }
    }
}
