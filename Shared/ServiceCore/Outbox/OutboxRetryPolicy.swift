/// How long a delivery waits after failing before it is tried again.
///
/// Every failure is retried, for as long as it takes: an event is never dropped or parked by the
/// relay. The 4xx answers that look permanent (400, 401, 403, 404, 422, …) come in this suite from
/// things a deploy or a configuration change fixes: a receiver not yet running the version that
/// has the route or understands the payload, a caller not yet allowed, a secret that differs. After
/// the fix the event must still arrive, and a parked one would need someone to re-drive it.
/// Retrying costs one request per `cap` per stuck delivery and never delays the others (each
/// delivery waits on its own), so such failures are only logged loudly and counted apart.
package struct OutboxRetryPolicy: Sendable {
    /// The wait after the first failure.
    package var base: Duration
    /// The longest wait, reached after log2(cap / base) failures in a row.
    package var cap: Duration

    package init(base: Duration = .seconds(1), cap: Duration = .seconds(300)) {
        precondition(base > .zero && cap >= base, "outbox retry: need 0 < base <= cap")
        self.base = base
        self.cap = cap
    }

    /// The wait after the `failures`-th failure in a row: base·2^(failures−1), capped, then scaled
    /// by a factor in 0.5...1 taken from `random` (in 0...1). Deliveries that failed together in
    /// one outage so come back spread out, and each wait is still at least half the exponential one.
    package func delay(afterFailures failures: Int, random: Double = .random(in: 0...1)) -> Duration {
        let doublings = Double(sign: .plus, exponent: min(max(failures, 1) - 1, 62), significand: 1)
        let exponential = min(Double(cap.nanoseconds), Double(base.nanoseconds) * doublings)
        let jittered = exponential * (0.5 + 0.5 * min(max(random, 0), 1))
        return .nanoseconds(Int64(jittered))
    }
}
