import Hummingbird
import Metrics
import Prometheus
import Synchronization

/// Per-service metrics: its own Prometheus registry, so services sharing a process stay apart.
package struct ServiceMetrics: Sendable {
    package let registry: PrometheusCollectorRegistry
    package let factory: PrometheusMetricsFactory

    package init() {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
            .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
            .seconds(2), .seconds(5), .seconds(10),
        ]
        self.registry = registry
        self.factory = factory
    }
}

/// Counts requests and records latency by method, route template and status.
package struct HTTPMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let handles: MetricHandles

    package init(metrics: ServiceMetrics) {
        self.handles = MetricHandles(factory: metrics.factory)
    }

    package func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let start = ContinuousClock.now
        do {
            let response = try await next(request, context)
            record(request, context: context, status: response.status.code, since: start)
            return response
        } catch {
            let status = (error as? any HTTPResponseError)?.status.code ?? 500
            record(request, context: context, status: status, since: start)
            throw error
        }
    }

    private func record(_ request: Request, context: Context, status: Int, since start: ContinuousClock.Instant) {
        // Route templates, never raw paths, keep label cardinality bounded.
        handles.record(
            method: request.method.rawValue, route: context.endpointPath ?? "NotFound", status: status,
            nanoseconds: (ContinuousClock.now - start).nanoseconds
        )
    }
}

/// The counter and timer of each (method, route, status), made once instead of looked up in the
/// registry on every request.
package final class MetricHandles: Sendable {
    private struct Key: Hashable {
        var method: String
        var route: String
        var status: Int
    }

    private let factory: PrometheusMetricsFactory
    private let cache = Mutex<[Key: (Metrics.Counter, Metrics.Timer)]>([:])

    package init(factory: PrometheusMetricsFactory) {
        self.factory = factory
    }

    /// Counts one request and records how long it took.
    package func record(method: String, route: String, status: Int, nanoseconds: Int64) {
        let (counter, timer) = handles(method: method, route: route, status: status)
        counter.increment()
        timer.recordNanoseconds(nanoseconds)
    }

    /// The counter and timer of one (method, route, status), for a caller that keeps them across
    /// requests: the gateway's connections record them after every answer.
    package func handles(method: String, route: String, status: Int) -> (Metrics.Counter, Metrics.Timer) {
        let key = Key(method: method, route: route, status: status)
        if let found = cache.withLock({ $0[key] }) { return found }
        let dimensions = [("method", method), ("route", route), ("status", String(status))]
        let made = (
            Metrics.Counter(label: "http_requests_total", dimensions: dimensions, factory: factory),
            Metrics.Timer(label: "http_request_duration_seconds", dimensions: dimensions, factory: factory)
        )
        cache.withLock { $0[key] = made }
        return made
    }
}

extension Duration {
    /// In seconds, for SQL intervals.
    package var inSeconds: Double { Double(nanoseconds) / 1_000_000_000 }

    /// The whole duration in nanoseconds (saturating far beyond any request's length).
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
