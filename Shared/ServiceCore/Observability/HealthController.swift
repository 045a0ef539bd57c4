import Foundation
import Hummingbird
import NIOCore
import Prometheus

/// A named dependency check used by `/ready`.
package struct ReadinessCheck: Sendable {
    package let name: String
    package let check: @Sendable () async throws -> Void

    package init(_ name: String, check: @escaping @Sendable () async throws -> Void) {
        self.name = name
        self.check = check
    }
}

/// `/health`, `/live`, `/ready` and `/metrics`, the same on every service.
package struct HealthController<Context: RequestContext>: Sendable {
    let service: String
    let checks: [ReadinessCheck]
    let metrics: ServiceMetrics
    let includeHealth: Bool

    /// - Parameter includeHealth: false when the service answers `/health` itself (the gateway).
    package init(service: String, checks: [ReadinessCheck], metrics: ServiceMetrics, includeHealth: Bool = true) {
        self.service = service
        self.checks = checks
        self.metrics = metrics
        self.includeHealth = includeHealth
    }

    struct Status: Codable, Sendable {
        var status: String
        var service: String
        var timestamp: Date
        var checks: [String: String]?
    }

    struct NotReady: Codable, Sendable {
        var detail: String
        var code: String
        var service: String
        var checks: [String: String]
    }

    /// The paths this controller answers on every service.
    package static var paths: Set<String> { ["/health", "/live", "/ready", "/metrics"] }

    package func addRoutes(to router: some RouterMethods<Context>) {
        if includeHealth {
            router.get("health") { _, _ in
                JSONResponse(Status(status: "ok", service: service, timestamp: Date(), checks: nil))
            }
        }
        router.get("live") { _, _ in
            JSONResponse(Status(status: "alive", service: service, timestamp: Date(), checks: nil))
        }
        router.get("ready") { request, context -> Response in
            let results = await runChecks()
            let failed = results.filter { $0.value != "ok" }.keys.sorted()
            if failed.isEmpty {
                return try JSONResponse(Status(status: "ready", service: service, timestamp: Date(), checks: results))
                    .response(from: request, context: context)
            }
            let body = NotReady(
                detail: "Not ready: \(failed.joined(separator: ", ")) failing",
                code: "NOT_READY",
                service: service,
                checks: results
            )
            return try JSONResponse(body, status: .serviceUnavailable)
                .response(from: request, context: context)
        }
        router.get("metrics") { _, _ in
            var buffer: [UInt8] = []
            buffer.reserveCapacity(4096)
            metrics.registry.emit(into: &buffer)
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: buffer))
            )
        }
    }

    /// Runs every check concurrently, each bounded to two seconds.
    private func runChecks() async -> [String: String] {
        await withTaskGroup(of: (String, String).self) { group in
            for check in checks {
                group.addTask {
                    do {
                        try await withTimeout(.seconds(2)) { try await check.check() }
                        return (check.name, "ok")
                    } catch {
                        return (check.name, "failing")
                    }
                }
            }
            var results: [String: String] = [:]
            for await (name, result) in group { results[name] = result }
            return results
        }
    }
}

/// Thrown by `withTimeout` when the operation did not finish in time.
package struct TimeoutError: Error {
    package init() {}
}

/// Runs `operation`, cancelling it and throwing `TimeoutError` once `duration` has passed.
package func withTimeout<T: Sendable>(
    _ duration: Duration,
    _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await operation() }
        group.addTask {
            try await Task.sleep(for: duration)
            throw TimeoutError()
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}
