import Metrics

/// Why a delivery attempt failed, as counted and logged: few values, so label cardinality stays bounded.
enum DeliveryFailure: String, CaseIterable, Sendable {
    /// No connection, or it broke: the receiver is down or restarting.
    case unreachable
    case timeout
    /// 5xx, 408, 409, 425, 429: the receiver could not take it now.
    case retryableStatus = "retryable_status"
    /// Another 4xx: the receiver refuses this event until it or the sender is fixed.
    case rejected
    /// Anything else, such as no client known for the subscriber.
    case other
}

/// The relay's counters, made once per subscriber instead of looked up in the registry per delivery.
struct OutboxRelayMetrics: Sendable {
    private let delivered: [String: Counter]
    private let failed: [String: [DeliveryFailure: Counter]]
    private let pending: Gauge

    init(subscribers: some Sequence<String>, factory: any MetricsFactory) {
        var delivered: [String: Counter] = [:]
        var failed: [String: [DeliveryFailure: Counter]] = [:]
        for subscriber in subscribers {
            delivered[subscriber] = Counter(label: "outbox_delivered_total", dimensions: [("subscriber", subscriber)], factory: factory)
            failed[subscriber] = Dictionary(uniqueKeysWithValues: DeliveryFailure.allCases.map { reason in
                let dimensions = [("subscriber", subscriber), ("reason", reason.rawValue)]
                return (reason, Counter(label: "outbox_delivery_failures_total", dimensions: dimensions, factory: factory))
            })
        }
        self.delivered = delivered
        self.failed = failed
        self.pending = Gauge(label: "outbox_pending_deliveries", factory: factory)
    }

    func recordDelivered(to subscriber: String) {
        delivered[subscriber]?.increment()
    }

    func recordFailure(to subscriber: String, reason: DeliveryFailure) {
        // A subscriber no longer in the routing table (rows left from an older release) gets no counter.
        failed[subscriber]?[reason]?.increment()
    }

    /// Undelivered deliveries, due or waiting for their next attempt.
    func recordPending(_ count: Int) {
        pending.record(count)
    }
}
