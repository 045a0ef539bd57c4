import Foundation
import LocalPostgres
import Logging
import NIOCore
import NIOHTTP1
import ServiceCore
import Synchronization
import TestSupport
import Testing

/// PostgreSQL stopped under load and started again, on a cluster of this test's own.
@Suite("database outage", .timeLimit(.minutes(3)))
struct DatabaseOutageTests {
    /// One request of the background load: when it was sent, how long it took, what it answered.
    struct Outcome: Sendable {
        var sentAt: ContinuousClock.Instant
        var took: Duration
        var status: Int
        var code: String?
    }

    @Test func servicesAnswer503FastWhileTheDatabaseIsDownAndRecoverByThemselves() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("outage-\(UUID().uuidString.prefix(8))").path
        let cluster = LocalPostgresCluster(directory: directory, port: try ChildProcess.freePort(), binDirectory: try LocalPostgresCluster.locateBinaries())
        try cluster.start()
        defer {
            cluster.stop(mode: "immediate")
            cluster.remove()
        }
        try await cluster.createDatabases(["billing"], logger: Logger(label: "outage"))
        let billingDatabase = try DatabaseConfig(url: cluster.url(database: "billing"))

        // Billing's database is the one that goes away; auth's lives on the shared test server.
        try await TestStack.with(
            // The production check timeout (the stack's own is longer, for a busy machine): what an
            // outage looks like to a service is what this test times.
            .auth, .billing, .gateway, overrides: ["RATE_LIMIT_PUBLIC_PER_MINUTE": "100000", "DATABASE_CHECK_TIMEOUT_MS": "1000"],
            databases: [.billing: billingDatabase]
        ) { stack in
            let plansURL = stack.url(.gateway) + "/api/payments/plans"
            #expect(try await TestHTTP.send(.GET, plansURL).status == 200)

            let outcomes = Mutex<[Outcome]>([])
            let load = Task {
                while !Task.isCancelled {
                    let sent = ContinuousClock.now
                    let response = try? await TestHTTP.send(.GET, plansURL, timeout: .seconds(20))
                    // A request cut short by the test's own cancellation is no outcome of the service.
                    if Task.isCancelled { break }
                    let outcome = Outcome(
                        sentAt: sent, took: ContinuousClock.now - sent, status: response?.status ?? 0, code: try? response?.error().code
                    )
                    outcomes.withLock { $0.append(outcome) }
                    try? await Task.sleep(for: .milliseconds(50))
                }
            }
            defer { load.cancel() }
            try await Task.sleep(for: .milliseconds(500))

            let stoppedAt = ContinuousClock.now
            cluster.stop(mode: "fast")
            // Within two seconds the answers are 503 DATABASE_UNAVAILABLE…
            var unavailable: TestResponse?
            while ContinuousClock.now - stoppedAt < .seconds(5) {
                let response = try await TestHTTP.send(.GET, plansURL, timeout: .seconds(10))
                if response.status == 503 {
                    unavailable = response
                    break
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(ContinuousClock.now - stoppedAt < .seconds(3), "503 only after \(ContinuousClock.now - stoppedAt)")
            #expect(try unavailable?.error().code == "DATABASE_UNAVAILABLE")
            #expect(unavailable?.header("Retry-After") != nil)
            // …billing says it is not ready but alive, and the other services keep answering.
            #expect(try await TestHTTP.send(.GET, stack.url(.billing) + "/ready").status == 503)
            #expect(try await TestHTTP.send(.GET, stack.url(.billing) + "/live").status == 200)
            #expect(try await TestHTTP.send(.GET, stack.url(.gateway) + "/.well-known/jwks.json").status == 200)
            try await Task.sleep(for: .seconds(2))
            let restartedAt = ContinuousClock.now
            try cluster.start()
            var recovered = false
            while ContinuousClock.now - restartedAt < .seconds(15) {
                if try await TestHTTP.send(.GET, plansURL).status == 200 {
                    recovered = true
                    break
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(recovered, "billing did not recover within 15 s of the database returning")
            #expect(ContinuousClock.now - restartedAt < .seconds(5), "recovered only after \(ContinuousClock.now - restartedAt)")
            #expect(try await TestHTTP.send(.GET, stack.url(.billing) + "/ready").status == 200)
            try await Task.sleep(for: .milliseconds(300))
            load.cancel()
            _ = await load.result

            let all = outcomes.withLock { $0 }
            // The load kept going throughout (a sample every 50 ms when idle; far fewer on a busy CI machine).
            #expect(all.count >= 10, "only \(all.count) requests were sent")
            // Nothing but 200 and 503 DATABASE_UNAVAILABLE, and never a long wait.
            let unexpected = all.filter { !($0.status == 200 || ($0.status == 503 && $0.code == "DATABASE_UNAVAILABLE")) }
            #expect(unexpected.isEmpty, "\(unexpected.map { "\($0.status) \($0.code ?? "")" })")
            let slowest = all.map(\.took).max() ?? .zero
            #expect(slowest < .milliseconds(2_500), "slowest request took \(slowest)")
            #expect(all.contains { $0.status == 503 })
            #expect(all.last?.status == 200)
        }
    }
}
