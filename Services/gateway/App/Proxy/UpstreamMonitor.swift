import AsyncHTTPClient
import Foundation
import Logging
import ServiceCore
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Synchronization

/// What the gateway last saw of an upstream.
struct UpstreamHealth: Codable, Sendable {
    var status: String
    var url: String
    var checkedAt: Date?
    var latencyMs: Int?
    var error: String?
}

/// Polls each upstream's `/ready` and also learns from proxied traffic, for the gateway's `/health`.
final class UpstreamMonitor: Service, Sendable {
    private let upstreams: [Upstream]
    private let http: HTTPClient
    private let interval: Duration
    private let logger: Logger
    private let states: Mutex<[Upstream.Name: UpstreamHealth]>
    /// Bit `ordinal` set while that upstream's status is "up" (kept by `update`), so `markUp`, called
    /// after every proxied answer, takes no lock while nothing changes.
    private let knownUp = Atomic<UInt8>(0)

    init(upstreams: [Upstream], http: HTTPClient, interval: Duration, logger: Logger) {
        self.upstreams = upstreams
        self.http = http
        self.interval = interval
        self.logger = logger
        self.states = Mutex(
            Dictionary(uniqueKeysWithValues: upstreams.map { ($0.name, UpstreamHealth(status: "unknown", url: $0.baseURL)) })
        )
    }

    func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            await checkAll()
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.interval) }
        }
    }

    func snapshot() -> [String: UpstreamHealth] {
        states.withLock { states in Dictionary(uniqueKeysWithValues: states.map { ($0.key.rawValue, $0.value) }) }
    }

    func markDown(_ name: Upstream.Name, reason: String) {
        update(name) { $0.status = "down"; $0.error = reason }
    }

    /// Called after every proxied answer, so it only takes the slow path when the state changes.
    func markUp(_ name: Upstream.Name) {
        guard knownUp.load(ordering: .relaxed) & (1 << name.ordinal) == 0 else { return }
        update(name) { $0.status = "up"; $0.error = nil }
    }

    private func update(_ name: Upstream.Name, _ change: (inout UpstreamHealth) -> Void) {
        states.withLock { states in
            guard var state = states[name] else { return }
            let before = state.status
            change(&state)
            state.checkedAt = Date()
            states[name] = state
            let bit: UInt8 = 1 << name.ordinal
            if state.status == "up" {
                knownUp.bitwiseOr(bit, ordering: .relaxed)
            } else {
                knownUp.bitwiseAnd(~bit, ordering: .relaxed)
            }
            if before != state.status {
                logger.notice("upstream \(state.status)", metadata: ["upstream": "\(name.rawValue)", "error": "\(state.error ?? "-")"])
            }
        }
    }

    private func checkAll() async {
        await withTaskGroup(of: Void.self) { group in
            for upstream in upstreams {
                group.addTask { await self.check(upstream) }
            }
        }
    }

    private func check(_ upstream: Upstream) async {
        let start = ContinuousClock.now
        do {
            let response = try await http.execute(HTTPClientRequest(url: upstream.baseURL + "/ready"), timeout: .seconds(2))
            _ = try await response.body.collect(upTo: 64 * 1024)
            let latency = Int((ContinuousClock.now - start) / .milliseconds(1))
            update(upstream.name) { state in
                state.status = response.status == .ok ? "up" : "down"
                state.error = response.status == .ok ? nil : "ready answered \(response.status.code)"
                state.latencyMs = latency
            }
        } catch {
            update(upstream.name) { state in
                state.status = "down"
                state.error = "\(error)"
                state.latencyMs = nil
            }
        }
    }
}
