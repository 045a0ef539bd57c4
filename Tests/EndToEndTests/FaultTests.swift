#if canImport(Glibc)
import Glibc
#endif
import Foundation
import LocalPostgres
import NIOHTTP1
import PostgresNIO
import ServiceCore
import Synchronization
import TestSupport
import Testing

/// Services killed, stopped and restarted under load, as the real executables.
@Suite("faults", .serialized, .timeLimit(.minutes(3)))
struct FaultTests {
    struct Outcome: Sendable {
        var route: String
        var status: Int
        var at: ContinuousClock.Instant
    }

    final class Outcomes: Sendable {
        private let list = Mutex<(outcomes: [Outcome], stopped: Bool)>(([], false))

        func append(_ outcome: Outcome) { list.withLock { $0.outcomes.append(outcome) } }

        /// Asks the load to stop after the requests it has in flight (cancelling them would record failures of our own making).
        func stop() { list.withLock { $0.stopped = true } }

        var stopped: Bool { list.withLock { $0.stopped } }

        var all: [Outcome] { list.withLock { $0.outcomes } }
    }

    /// Sends `requests` round-robin until `outcomes.stop()`, recording every answer (0: no answer at all).
    static func load(_ requests: [(String, @Sendable () async throws -> TestResponse)], into outcomes: Outcomes) -> Task<Void, Never> {
        Task {
            while !outcomes.stopped {
                for (route, request) in requests {
                    let status = (try? await request().status) ?? 0
                    outcomes.append(Outcome(route: route, status: status, at: .now))
                }
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
    }

    @Test func aKilledServiceIsIsolatedAndComesBackWithoutRestartingAnythingElse() async throws {
        let stack = try await TestStack.make(overrides: [
            "RATE_LIMIT_PUBLIC_PER_MINUTE": "100000", "RATE_LIMIT_TENANT_PER_MINUTE": "100000", "RATE_LIMIT_AUTH_PER_MINUTE": "100000",
            "TENANT_DEFAULT_RATE_LIMIT_PER_MINUTE": "100000",
        ])
        let services = try ChildServices(stack: stack)
        defer { services.stopAll() }
        for service in [ServiceName.auth, .billing, .tenancy, .chat, .gateway] { try await services.start(service) }
        let gateway = stack.url(.gateway)
        let owner = try await Fixtures.register(at: gateway)
        let token = owner.accessToken
        let slug = owner.tenantSlug

        let outcomes = Outcomes()
        let load = Self.load(
            [
                ("auth", { try await TestHTTP.send(.GET, gateway + "/api/auth/me", headers: Fixtures.bearer(token)) }),
                ("billing", { try await TestHTTP.send(.GET, gateway + "/api/payments/plans") }),
                ("tenancy", { try await TestHTTP.send(.GET, gateway + "/api/onboarding/status", headers: Fixtures.bearer(token)) }),
                ("chat", { try await TestHTTP.send(.POST, gateway + "/api/sessions/init", headers: ["X-Tenant-Slug": slug], body: "{}") }),
            ],
            into: outcomes
        )
        try await Task.sleep(for: .milliseconds(500))
        let killedAt = ContinuousClock.now
        services.kill(.chat)
        try await Task.sleep(for: .seconds(2))
        let restartedAt = ContinuousClock.now
        try await services.start(.chat)
        try await Task.sleep(for: .seconds(2))
        outcomes.stop()
        _ = await load.value

        let all = outcomes.all
        let others = all.filter { $0.route != "chat" }
        // Every other route kept answering while chat was down and after it came back (counted per
        // route and window, not as a total, which depends on how fast a loaded machine runs).
        for route in ["auth", "billing", "tenancy"] {
            let served = others.filter { $0.route == route }
            #expect(served.contains { $0.at > killedAt + .milliseconds(200) && $0.at < restartedAt }, "\(route) while chat was down")
            #expect(served.contains { $0.at > restartedAt + .milliseconds(500) }, "\(route) after chat came back")
        }
        #expect(others.allSatisfy { $0.status == 200 }, "\(others.filter { $0.status != 200 }.map { "\($0.route) \($0.status)" })")
        let chat = all.filter { $0.route == "chat" }
        let whileDown = chat.filter { $0.at > killedAt + .milliseconds(200) && $0.at < restartedAt }
        #expect(!whileDown.isEmpty && whileDown.allSatisfy { $0.status == 503 }, "\(whileDown.map(\.status))")
        let afterRestart = chat.filter { $0.at > restartedAt + .milliseconds(500) }
        #expect(!afterRestart.isEmpty && afterRestart.allSatisfy { $0.status == 201 }, "\(afterRestart.map(\.status))")
        #expect(chat.allSatisfy { [201, 503].contains($0.status) })
    }

    @Test func sigtermLosesNoRequestInFlight() async throws {
        let stack = try await TestStack.make(overrides: [
            "RATE_LIMIT_PUBLIC_PER_MINUTE": "100000", "RATE_LIMIT_SESSION_PER_MINUTE": "100000", "CHAT_STREAM_TOKEN_DELAY_MS": "60",
            "SHUTDOWN_GRACE_SECONDS": "20",
        ])
        let services = try ChildServices(stack: stack)
        defer { services.stopAll() }
        for service in [ServiceName.auth, .billing, .tenancy, .chat, .gateway] { try await services.start(service) }
        let gateway = stack.url(.gateway)
        let owner = try await Fixtures.register(at: gateway)
        struct Session: Decodable { var sessionId: String }
        let session = try await TestHTTP.send(.POST, gateway + "/api/sessions/init", headers: ["X-Tenant-Slug": owner.tenantSlug], body: "{}")
        let sessionID = try session.json(Session.self).sessionId

        // Eight streams (the test client's connections per host) of a second or more each, all in
        // flight when chat is asked to stop.
        let streams = (0..<8).map { _ in
            Task { try await TestHTTP.events(gateway + "/chatkit", headers: ["X-Session-ID": sessionID], body: "{}") }
        }
        try await Task.sleep(for: .milliseconds(400))
        let pid = try #require(services.terminate(.chat))
        var completed = 0
        for stream in streams {
            let (status, _, events) = try await stream.value
            #expect(status == 200)
            #expect(events.last?.data == "[DONE]", "a stream was cut: \(events.count) events")
            if status == 200, events.last?.data == "[DONE]" { completed += 1 }
        }
        #expect(completed == streams.count)
        #expect(ChildProcess.wait(pid) == 0)
        // Once it has stopped, its routes are 503 at the gateway.
        #expect(try await TestHTTP.send(.POST, gateway + "/chatkit", headers: ["X-Session-ID": sessionID], body: "{}").status == 503)
    }

    @Test func theLauncherRecoversFromItsOwnCrash() async throws {
        let binary = "\(ChildServices.binDirectory)/suite"
        let dataDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("suite-crash-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: dataDirectory)
        let ports = try (0..<7).map { _ in try TestPorts.next() }
        var environment = ProcessInfo.processInfo.environment
        for (name, port) in zip(["GATEWAY_PORT", "AUTH_PORT", "TENANCY_PORT", "BILLING_PORT", "CHAT_PORT", "PG_PORT", "GATEWAY_ADMIN_PORT"], ports) {
            environment[name] = String(port)
        }
        environment["DATA_DIR"] = dataDirectory
        environment["BCRYPT_COST"] = "4"
        environment["LOG_LEVEL"] = "warning"
        let gateway = "http://127.0.0.1:\(ports[0])"
        let log = "\(dataDirectory)/suite.log"
        let pidFile = "\(dataDirectory)/postgres/data/postmaster.pid"
        defer {
            if let pid = try? String(contentsOfFile: pidFile, encoding: .utf8).split(separator: "\n").first.flatMap({ Int32($0) }) {
                kill(pid, SIGQUIT)
            }
        }

        func waitForEveryService() async throws {
            for port in ports.prefix(5) { try await TestHTTP.waitUntilLive("http://127.0.0.1:\(port)", timeout: .seconds(90)) }
        }
        let first = try ChildProcess.spawn([binary], environment: environment, outputPath: log)
        try await waitForEveryService()
        let owner = try await Fixtures.register(at: gateway)
        kill(first, SIGKILL)
        ChildProcess.wait(first)
        // The crash left its PostgreSQL running…
        #expect(FileManager.default.fileExists(atPath: pidFile))

        // …and the next start deals with it, with the data intact.
        let second = try ChildProcess.spawn([binary], environment: environment, outputPath: log)
        try await waitForEveryService()
        let login = try await TestHTTP.send(.POST, gateway + "/api/auth/login", json: ["email": owner.email, "password": Fixtures.password])
        #expect(login.status == 200)
        kill(second, SIGTERM)
        #expect(ChildProcess.wait(second) == 0)
        #expect(!FileManager.default.fileExists(atPath: pidFile), "a clean stop leaves no PostgreSQL behind")
        let output = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(output.contains("from an earlier run is still running"), "\(output.suffix(2_000))")
    }
}
