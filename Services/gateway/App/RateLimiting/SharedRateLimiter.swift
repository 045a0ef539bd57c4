import Foundation
import Logging
import PostgresNIO
import ServiceCore
import Synchronization

/// Limits shared by every gateway replica through the gateway's PostgreSQL database
/// (`GATEWAY_DATABASE_URL`).
///
/// Replicas admit requests from leases: slices of a key's sliding-window quota that the database
/// grants atomically (`gateway_lease`), so together the replicas never admit more than the limit,
/// and the database is asked once per slice — batched across keys and waiting requests — never
/// once per request. Slices shrink as quota runs out, so quota stranded in unused slices stays
/// small. A key whose quota is gone is refused locally until its window could have room again.
///
/// When the database cannot be reached, requests are counted by this replica alone (`failOpen`,
/// the default, with a warning) or refused with 503.
final class SharedRateLimiter: RequestLimiter {
    /// One key's lease in this replica.
    struct Lease {
        var windowStart: Int
        /// Requests this replica may still admit from what it was granted.
        var balance = 0
        /// Granted to all replicas in this window and the previous one, as of the last lease.
        var total = 0
        var previous = 0
        /// After a lease found no quota: no point asking again before this (Unix ms).
        var refusedUntil = 0
    }

    private struct Pending {
        var window: Int
        var limit: Int
        var needs = 0
        var waiters: [CheckedContinuation<Bool, Never>] = []
    }

    private struct Batching {
        var pending: [String: Pending] = [:]
        var running = false
        /// While the database is unreachable, no lease is asked for before this (Unix ms).
        var unavailableUntil = 0
        var lastWarning = 0
    }

    private final class Shard: Sendable {
        let leases = Mutex<[String: Lease]>([:])
    }

    let windowSeconds: Int
    let failOpen: Bool
    private let database: Database
    private let fallback: RateLimiter
    private let logger: Logger
    private let shards: [Shard]
    private let keysPerShard: Int
    private let batching = Mutex(Batching())
    /// A lease call slower than this counts as the database being unreachable (fail open or closed
    /// for a second). Generous: a slow answer only delays the requests waiting for it.
    let leaseTimeout: Duration

    init(
        database: Database, fallback: RateLimiter, maxKeys: Int, failOpen: Bool, leaseTimeout: Duration = .seconds(2), logger: Logger,
        windowSeconds: Int = 60
    ) {
        self.leaseTimeout = leaseTimeout
        self.database = database
        self.fallback = fallback
        self.failOpen = failOpen
        self.logger = logger
        self.windowSeconds = windowSeconds
        self.shards = (0..<16).map { _ in Shard() }
        self.keysPerShard = max(1, maxKeys / 16)
    }

    // MARK: - RequestLimiter

    func decision(key: String, limit: Int, now: Date) -> RateLimitDecision? {
        let nowMs = SlidingWindowCounter.milliseconds(now)
        if batching.withLock({ nowMs < $0.unavailableUntil }) { return unavailable(key: key, limit: limit) }
        return local(key: key, limit: limit, nowMs: nowMs)
    }

    func decisionAfterWaiting(key: String, limit: Int) async -> RateLimitDecision? {
        for _ in 0..<4 {
            let nowMs = SlidingWindowCounter.milliseconds(Date())
            if batching.withLock({ nowMs < $0.unavailableUntil }) { return unavailable(key: key, limit: limit) }
            if let decided = local(key: key, limit: limit, nowMs: nowMs) { return decided }
            let window = SlidingWindowCounter.windowStart(containing: nowMs, length: windowSeconds)
            guard await lease(key: key, limit: limit, window: window) else { return unavailable(key: key, limit: limit) }
        }
        // Others on this replica took every slice granted meanwhile: the quota is contended to the last.
        let nowMs = SlidingWindowCounter.milliseconds(Date())
        return local(key: key, limit: limit, nowMs: nowMs) ?? refusal(lease(for: key, nowMs: nowMs), limit: limit, nowMs: nowMs)
    }

    // MARK: - This replica's leases

    /// Admits from this replica's slice, refuses a key known to be out of quota, or nil: ask for a slice.
    private func local(key: String, limit: Int, nowMs: Int) -> RateLimitDecision? {
        shard(for: key).leases.withLock { leases in
            var lease = current(leases[key], nowMs: nowMs)
            defer { store(lease, for: key, in: &leases) }
            if lease.balance > 0 {
                lease.balance -= 1
                return admission(lease, limit: limit, nowMs: nowMs)
            }
            if nowMs < lease.refusedUntil { return refusal(lease, limit: limit, nowMs: nowMs) }
            return nil
        }
    }

    private func lease(for key: String, nowMs: Int) -> Lease {
        shard(for: key).leases.withLock { current($0[key], nowMs: nowMs) }
    }

    /// The lease as of now: one from an earlier window has nothing left to spend.
    private func current(_ lease: Lease?, nowMs: Int) -> Lease {
        let window = SlidingWindowCounter.windowStart(containing: nowMs, length: windowSeconds)
        guard let lease, lease.windowStart == window else {
            let previous = lease.flatMap { $0.windowStart == window - windowSeconds ? $0.total : nil } ?? 0
            return Lease(windowStart: window, previous: previous)
        }
        return lease
    }

    private func store(_ lease: Lease, for key: String, in leases: inout [String: Lease]) {
        if leases[key] == nil, leases.count >= keysPerShard {
            // Full: forget leases of ended windows, else any. Forgetting a slice only under-admits;
            // the counts themselves live in the database, so a flood of keys resets nobody's.
            let window = lease.windowStart
            leases = leases.filter { $0.value.windowStart == window && $0.value.balance > 0 }
            if leases.count >= keysPerShard { leases.removeAll(keepingCapacity: true) }
        }
        leases[key] = lease
    }

    private func admission(_ lease: Lease, limit: Int, nowMs: Int) -> RateLimitDecision {
        var counter = SlidingWindowCounter(windowStart: lease.windowStart, current: lease.total, previous: lease.previous)
        let unleased = counter.admit(limit: limit, nowMilliseconds: nowMs, length: windowSeconds)
        return RateLimitDecision(
            allowed: true, limit: limit, remaining: lease.balance + (unleased.allowed ? unleased.remaining + 1 : 0),
            resetAt: lease.windowStart + windowSeconds, retryAfter: 1, policyWindowSeconds: windowSeconds
        )
    }

    private func refusal(_ lease: Lease, limit: Int, nowMs: Int) -> RateLimitDecision {
        // Everything granted counts as spent: when would one more fit in the sliding window?
        var counter = SlidingWindowCounter(windowStart: lease.windowStart, current: max(lease.total, limit), previous: lease.previous)
        var refused = counter.admit(limit: limit, nowMilliseconds: nowMs, length: windowSeconds)
        refused.allowed = false
        refused.remaining = 0
        return refused
    }

    // MARK: - Leasing

    /// Waits until the database has answered for `key` (its grant is then in this replica's lease);
    /// false when it could not be asked.
    private func lease(key: String, limit: Int, window: Int) async -> Bool {
        await withCheckedContinuation { continuation in
            let start = batching.withLock { state in
                state.pending[key, default: Pending(window: window, limit: limit)].needs += 1
                state.pending[key]!.waiters.append(continuation)
                defer { state.running = true }
                return !state.running
            }
            if start { Task { await self.leaseBatches() } }
        }
    }

    /// One database call at a time, each for every key that asked while the last one ran.
    private func leaseBatches() async {
        while let batch = batching.withLock({ state -> [String: Pending]? in
            guard !state.pending.isEmpty else {
                state.running = false
                return nil
            }
            defer { state.pending = [:] }
            return state.pending
        }) {
            let answered = await grant(batch)
            for waiter in batch.values.flatMap(\.waiters) { waiter.resume(returning: answered) }
        }
    }

    private func grant(_ batch: [String: Pending]) async -> Bool {
        let nowMs = SlidingWindowCounter.milliseconds(Date())
        let keys = Array(batch.keys)
        let pending = keys.map { batch[$0]! }
        let weights = pending.map { item in
            Double(windowSeconds * 1_000 - min(windowSeconds * 1_000, max(0, nowMs - item.window * 1_000))) / Double(windowSeconds * 1_000)
        }
        let wants = pending.map { max(1, $0.limit / 20) }
        do {
            let rows = try await withTimeout(leaseTimeout) { [database, logger, windowSeconds] in
                try await database.query(
                    """
                    SELECT lease_key, lease_window, lease_granted, lease_total, lease_previous FROM gateway_lease(
                        \(keys), \(pending.map { Int64($0.window) }), \(pending.map { Int32(clamping: $0.limit) }), \(wants.map { Int32(clamping: $0) }),
                        \(pending.map { Int32(clamping: $0.needs) }), \(weights), \(Int32(windowSeconds)))
                    """,
                    logger: logger
                ).decode((String, Int64, Int32, Int32, Int32).self)
            }
            for (key, window, granted, total, previous) in rows {
                shard(for: key).leases.withLock { leases in
                    var lease = current(leases[key], nowMs: nowMs)
                    guard lease.windowStart == Int(window) else { return }
                    lease.balance += Int(granted)
                    lease.total = Int(total)
                    lease.previous = Int(previous)
                    if granted == 0 {
                        // Ask again once the window could have room, but at least once a second.
                        let limit = batch[key]?.limit ?? 0
                        let wait = refusal(lease, limit: limit, nowMs: nowMs).retryAfter * 1_000
                        lease.refusedUntil = nowMs + min(wait, 1_000)
                    }
                    store(lease, for: key, in: &leases)
                }
            }
            return true
        } catch {
            batching.withLock { state in
                state.unavailableUntil = SlidingWindowCounter.milliseconds(Date()) + 1_000
            }
            warn("shared rate limits unavailable: \(String(reflecting: error))")
            return false
        }
    }

    /// Without the database: this replica's own count, or nil (503) when failing closed.
    private func unavailable(key: String, limit: Int) -> RateLimitDecision? {
        guard failOpen else { return nil }
        return fallback.check(key: key, limit: limit)
    }

    private func warn(_ message: String) {
        let nowMs = SlidingWindowCounter.milliseconds(Date())
        let due = batching.withLock { state in
            guard nowMs - state.lastWarning >= 10_000 else { return false }
            state.lastWarning = nowMs
            return true
        }
        if due {
            logger.warning(
                "\(message); limits are \(failOpen ? "counted by each replica alone (fail open)" : "refused with 503 (fail closed)") until it answers"
            )
        }
    }

    private func shard(for key: String) -> Shard {
        shards[Int(UInt(bitPattern: key.hashValue) % UInt(shards.count))]
    }
}
