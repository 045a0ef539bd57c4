import Foundation
import Hummingbird
import ServiceCore

/// The gateway's `/health`: its own state and what it last saw of each upstream.
struct GatewayHealthController: Sendable {
    let monitor: UpstreamMonitor

    struct Health: Codable, Sendable {
        var status: String
        var service: String
        var timestamp: Date
        var upstreams: [String: UpstreamHealth]
    }

    func addRoutes(to router: Router<GatewayRequestContext>) {
        router.get("health") { _, _ in
            let upstreams = monitor.snapshot()
            let allUp = upstreams.values.allSatisfy { $0.status == "up" }
            // Always 200: the gateway itself is healthy; a down upstream is reported, not inherited.
            return JSONResponse(Health(status: allUp ? "ok" : "degraded", service: "gateway", timestamp: Date(), upstreams: upstreams))
        }
    }
}
