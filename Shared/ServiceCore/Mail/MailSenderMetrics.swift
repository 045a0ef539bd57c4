import Metrics

/// The mail sender's counters, made once instead of looked up in the registry per mail.
struct MailSenderMetrics: Sendable {
    private let sent: Counter
    private let failures: [MailFailureReason: Counter]
    private let pending: Gauge

    init(factory: any MetricsFactory) {
        sent = Counter(label: "mail_sent_total", factory: factory)
        failures = Dictionary(uniqueKeysWithValues: MailFailureReason.allCases.map { reason in
            (reason, Counter(label: "mail_send_failures_total", dimensions: [("reason", reason.rawValue)], factory: factory))
        })
        pending = Gauge(label: "mail_outbox_pending", factory: factory)
    }

    func recordSent() {
        sent.increment()
    }

    /// One failed attempt; `rejected` and `invalid_message` are the permanent ones.
    func recordFailure(_ reason: MailFailureReason) {
        failures[reason]?.increment()
    }

    /// Mail neither sent nor failed, due or waiting for its next attempt.
    func recordPending(_ count: Int) {
        pending.record(count)
    }
}
