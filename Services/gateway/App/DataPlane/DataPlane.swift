import Foundation
import Logging
import NIOCore
import ServiceCore

/// What every connection of the gateway's data plane shares: admission, where each upstream is,
/// the limits and timeouts, the upstream health it reports to and the metrics it records.
final class DataPlane: Sendable {
    struct Limits: Sendable {
        /// Largest request body forwarded (413 beyond).
        var maxBodyBytes: Int
        /// Declared bodies up to this size are read whole before anything goes upstream.
        var bufferBytes: Int
        /// Time a client has to send a body read whole, or may pause within a relayed one (408).
        var bodyTimeout: TimeAmount
        /// Time a client has to finish a request head once it has started one.
        var headerTimeout: TimeAmount
        /// Time a kept-alive connection may wait for its next request.
        var idleTimeout: TimeAmount
        var upstreamConnectTimeout: TimeAmount
        /// Time an upstream has to start answering (504 beyond).
        var upstreamTimeout: TimeAmount
        /// Time an upstream may pause within an answer (streams such as SSE pause between events).
        var upstreamIdleTimeout: TimeAmount
    }

    let admission: Admission
    let cors: CORSPolicy
    let upstreams: [PublicService: UpstreamAddress]
    let limits: Limits
    let monitor: UpstreamMonitor
    let metrics: MetricHandles
    let logger: Logger
    let trustedProxies: TrustedProxies
    let pools: UpstreamPools
    /// WebSocket tunnels opened with an access token, closed when the feeds void it.
    let tunnels: OpenTunnels

    init(
        admission: Admission, cors: CORSPolicy, upstreams: [PublicService: UpstreamAddress], limits: Limits,
        monitor: UpstreamMonitor, metrics: MetricHandles, logger: Logger, trustedProxies: TrustedProxies, tunnels: OpenTunnels = OpenTunnels()
    ) {
        self.tunnels = tunnels
        self.admission = admission
        self.cors = cors
        self.upstreams = upstreams
        self.limits = limits
        self.monitor = monitor
        self.metrics = metrics
        self.logger = logger
        self.trustedProxies = trustedProxies
        self.pools = UpstreamPools(limits: limits)
    }
}

/// Where an upstream listens, read once from its base URL.
struct UpstreamAddress: Sendable {
    var service: PublicService
    var host: String
    var port: Int
    /// The `Host` header the upstream is sent.
    var authority: String
    /// A path prefix of the base URL (usually empty), put before every forwarded path.
    var basePath: String

    init(_ upstream: Upstream) throws {
        guard let url = URL(string: upstream.baseURL), url.scheme?.lowercased() == "http", let host = url.host, !host.isEmpty else {
            throw ConfigurationError(
                variable: "\(upstream.name.rawValue.uppercased())_URL",
                problem: "must be an http:// URL with a host, got '\(upstream.baseURL)'"
            )
        }
        self.service = upstream.name
        self.host = host
        self.port = url.port ?? 80
        self.authority = url.port.map { "\(host):\($0)" } ?? host
        let path = url.path
        self.basePath = path.hasSuffix("/") ? String(path.dropLast()) : path
    }
}
