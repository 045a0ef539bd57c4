import Foundation
import NIOHTTP1
import PostgresNIO
import ServiceCore
import ServiceLifecycle
import TestSupport
import Testing

@testable import GatewayApp

/// Three gateway replicas on loopback sharing limits through the gateway's own PostgreSQL
/// database, with a client spreading its requests across them.
@Suite("shared limits", .timeLimit(.minutes(3)))
struct SharedLimitsTests {
    /// Replicas of the gateway in this process, each with its own ports, the same environment.
    final class Replicas: Sendable {
        let ports: [Int]
        private let runners: [ServiceRunner]

        init(count: Int, stack: TestStack, overrides: [String: String]) async throws {
            var ports: [Int] = []
            var runners: [ServiceRunner] = []
            for _ in 0..<count {
                let port = try TestPorts.next()
                var environment = stack.environment(for: .gateway).merging(overrides) { $1 }
                environment["HTTP_PORT"] = String(port)
                environment["GATEWAY_ADMIN_PORT"] = String(try TestPorts.next())
                let app = try await buildGatewayApplication(config: GatewayConfig(settings: Settings.variables(environment)))
                runners.append(ServiceRunner([app]))
                try await TestHTTP.waitUntilLive("http://127.0.0.1:\(port)")
                ports.append(port)
            }
            self.ports = ports
            self.runners = runners
        }

        func stop() async {
            for runner in runners { await runner.stop() }
        }
    }

    static func databaseURL(_ database: DatabaseConfig) -> String {
        "postgres://\(database.username)\(database.password.map { ":\($0)" } ?? "")@\(database.host):\(database.port)/\(database.database)"
    }

    /// Waits, if need be, so that the next `seconds` fall within one aligned minute: the test then
    /// counts one window exactly.
    static func waitForRoomInTheWindow(_ seconds: Double) async throws {
        let intoWindow = Date().timeIntervalSince1970.truncatingRemainder(dividingBy: 60)
        if 60 - intoWindow < seconds { try await Task.sleep(for: .seconds(60 - intoWindow + 0.2)) }
    }

    /// Sends `total` requests, `concurrency` at a time, round-robin over the replicas, all as one
    /// client (`X-Forwarded-For` from a trusted loopback proxy); the statuses per replica.
    static func spread(total: Int, concurrency: Int, ports: [Int], client: String) async throws -> [[Int]] {
        try await withThrowingTaskGroup(of: (Int, Int).self) { group in
            var next = 0
            var statuses = Array(repeating: [Int](), count: ports.count)
            func launch() {
                let index = next % ports.count
                next += 1
                group.addTask {
                    let response = try await TestHTTP.send(
                        .GET, "http://127.0.0.1:\(ports[index])/api/payments/plans", headers: ["X-Forwarded-For": client]
                    )
                    return (index, response.status)
                }
            }
            for _ in 0..<concurrency { launch() }
            while let (index, status) = try await group.next() {
                statuses[index].append(status)
                if next < total { launch() }
            }
            return statuses
        }
    }

    static let overrides = ["TRUSTED_PROXIES": "127.0.0.1", "RATE_LIMIT_PUBLIC_PER_MINUTE": "300", "HEALTH_CHECK_INTERVAL_SECONDS": "3600"]

    @Test func threeReplicasAdmitTheLimitTogetherNeverMore() async throws {
        let upstream = try GatewayTransportTests.CountingUpstream()
        let database = try await TestPostgres.freshDatabase("gateway")
        let stack = try await TestStack.make()
        var overrides = Self.overrides
        overrides["BILLING_URL"] = upstream.server.url
        overrides["GATEWAY_DATABASE_URL"] = Self.databaseURL(database)
        // Closed: were the database ever too slow, the test sees 503s, not per-replica counting.
        overrides["RATE_LIMIT_SHARED_FAILURE"] = "closed"
        // Beside every other test, this process's tasks can wait seconds for a thread: a lease must
        // not count as the database being down merely for that. (The 503s this test saw came from the
        // database monitor's deadline, which the stack raises: `DATABASE_CHECK_TIMEOUT_MS`.)
        overrides["RATE_LIMIT_SHARED_TIMEOUT_MS"] = "15000"
        let replicas = try await Replicas(count: 3, stack: stack, overrides: overrides)
        do {
            // A replica serves before its migrations are applied (failing open or closed meanwhile, as
            // configured): the count starts once the leasing function exists.
            let ready = ContinuousClock.now + .seconds(30)
            while try await TestPostgres.count(database, "SELECT count(*)::int FROM pg_proc WHERE proname = 'gateway_lease'") == 0 {
                guard ContinuousClock.now < ready else { throw CancellationError() }
                try await Task.sleep(for: .milliseconds(100))
            }
            try await Self.waitForRoomInTheWindow(15)
            let client = "198.51.100.\(Int.random(in: 1...254))"
            let statuses = try await Self.spread(total: 900, concurrency: 12, ports: replicas.ports, client: client)
            let admitted = statuses.map { $0.filter { $0 == 200 }.count }
            let total = admitted.reduce(0, +)
            // Failing closed, a lease slower than the timeout answers 503 for a moment instead of
            // counting per replica: a few at most, never anything else.
            let unavailable = statuses.joined().filter { $0 == 503 }.count
            #expect(statuses.joined().allSatisfy { $0 == 200 || $0 == 429 || $0 == 503 }, "statuses seen: \(Set(statuses.joined()))")
            #expect(unavailable <= 90, "\(unavailable) of 900 answered 503")
            // Never over the limit; within 5 % of it, counting the moments the limiter was unavailable; every
            // replica took part.
            #expect(total <= 300 && total + unavailable >= 285, "admitted \(total) of 300, \(unavailable) unavailable (per replica: \(admitted))")
            #expect(admitted.allSatisfy { $0 > 0 }, "per replica: \(admitted)")
            #expect(upstream.requests.count == total)
            let granted = try await TestPostgres.count(database, "SELECT COALESCE(sum(granted), 0)::int FROM rate_limit_windows WHERE key = \("ip|" + client)")
            #expect(granted >= total && granted <= 300)
        } catch {
            await replicas.stop()
            throw error
        }
        await replicas.stop()
    }

    @Test func withoutADatabaseEachReplicaCountsAlone() async throws {
        let upstream = try GatewayTransportTests.CountingUpstream()
        let stack = try await TestStack.make()
        var overrides = Self.overrides
        overrides["BILLING_URL"] = upstream.server.url
        overrides["RATE_LIMIT_PUBLIC_PER_MINUTE"] = "20"
        let replicas = try await Replicas(count: 3, stack: stack, overrides: overrides)
        do {
            try await Self.waitForRoomInTheWindow(10)
            let statuses = try await Self.spread(total: 120, concurrency: 3, ports: replicas.ports, client: "198.51.100.7")
            #expect(statuses.map { $0.filter { $0 == 200 }.count } == [20, 20, 20])
        } catch {
            await replicas.stop()
            throw error
        }
        await replicas.stop()
    }

    @Test(arguments: ["open", "closed"])
    func anUnreachableDatabaseFailsOpenOrClosedAsConfigured(mode: String) async throws {
        let upstream = try GatewayTransportTests.CountingUpstream()
        let stack = try await TestStack.make()
        var overrides = Self.overrides
        overrides["BILLING_URL"] = upstream.server.url
        overrides["RATE_LIMIT_PUBLIC_PER_MINUTE"] = "5"
        overrides["GATEWAY_DATABASE_URL"] = "postgres://nobody@127.0.0.1:\(try TestPorts.next())/gateway"
        overrides["RATE_LIMIT_SHARED_FAILURE"] = mode
        let replicas = try await Replicas(count: 1, stack: stack, overrides: overrides)
        do {
            try await Self.waitForRoomInTheWindow(10)
            var statuses: [Int] = []
            var codes: Set<String> = []
            for _ in 0..<8 {
                let response = try await TestHTTP.send(.GET, "http://127.0.0.1:\(replicas.ports[0])/api/payments/plans")
                statuses.append(response.status)
                if response.status != 200 { codes.insert(try response.error().code) }
            }
            if mode == "open" {
                // Counted by this replica alone: the limit still holds per replica.
                #expect(statuses == [200, 200, 200, 200, 200, 429, 429, 429])
            } else {
                #expect(statuses.allSatisfy { $0 == 503 })
                #expect(codes == ["RATE_LIMITER_UNAVAILABLE"])
            }
        } catch {
            await replicas.stop()
            throw error
        }
        await replicas.stop()
    }
}
