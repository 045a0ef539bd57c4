import Foundation

/// One key's admitted requests in the current and the previous aligned window: the whole state of a sliding-window counter.
///
/// The request rate is estimated as `previous × (part of the previous window still inside the sliding window) + current`,
/// as Cloudflare describes. Time is in Unix milliseconds and lengths in seconds, and every comparison is done in
/// integer request·milliseconds, so limits are exact at boundaries instead of depending on floating-point rounding.
///
/// Only admitted requests are counted. The limit then bounds the work that reaches the upstream, `remaining` and
/// `retryAfter` are exact, and a client that ignores Retry-After is still held to `limit` per window. Counting
/// refusals too (as Cloudflare does) would keep a client that retries a little early locked out for as long as it
/// keeps retrying, and on a shared key (a tenant, a NAT, the overflow counter) one noisy caller would lock out
/// everyone behind it indefinitely.
struct SlidingWindowCounter: Sendable {
    /// Counts are capped here so that `count × window milliseconds` cannot overflow `Int`.
    static let maxCount = Int(Int32.max)
    /// Longest supported window (a week), for the same overflow reason.
    static let maxWindowSeconds = 604_800

    /// Unix seconds at which the current window began: a multiple of the window length.
    private(set) var windowStart: Int
    private(set) var current = 0
    private(set) var previous = 0
    /// Admissions made here that `drainUnsynced` has not yet handed to the synchroniser.
    private(set) var unsyncedCurrent = 0
    private(set) var unsyncedPrevious = 0

    init(windowStart: Int) {
        self.windowStart = windowStart
    }

    /// A counter holding counts learned elsewhere (the shared store's totals).
    init(windowStart: Int, current: Int, previous: Int) {
        self.windowStart = windowStart
        self.current = min(max(current, 0), Self.maxCount)
        self.previous = min(max(previous, 0), Self.maxCount)
    }

    /// Unix milliseconds, as every limiter counts time; `Int(_:)` traps on NaN or out-of-range
    /// values, and a broken clock must not crash the gateway.
    static func milliseconds(_ date: Date) -> Int {
        let milliseconds = date.timeIntervalSince1970 * 1_000
        return milliseconds > 0 && milliseconds < 1e15 ? Int(milliseconds) : 0
    }

    /// Start (Unix seconds) of the aligned window holding `nowMilliseconds`; aligned so replicas agree on window keys.
    static func windowStart(containing nowMilliseconds: Int, length: Int) -> Int {
        nowMilliseconds / (length * 1_000) * length
    }

    /// True once a counter whose current window began at `windowStart` can no longer affect any decision: that window
    /// and the one after it have both ended.
    static func hasExpired(windowStart: Int, nowMilliseconds: Int, length: Int) -> Bool {
        nowMilliseconds >= (windowStart + 2 * length) * 1_000
    }

    /// Moves to `window` if it is later than the current one (never back: a clock that stepped back must not reset a
    /// counter); returns whether it moved.
    @discardableResult
    mutating func advance(to window: Int, length: Int) -> Bool {
        guard window > windowStart else { return false }
        if window - windowStart == length {
            previous = current
            unsyncedPrevious = unsyncedCurrent
        } else {
            previous = 0
            unsyncedPrevious = 0
        }
        current = 0
        unsyncedCurrent = 0
        windowStart = window
        return true
    }

    /// Counts one request if the weighted count leaves room for it under `limit`.
    mutating func admit(limit requestedLimit: Int, nowMilliseconds: Int, length: Int) -> RateLimitDecision {
        advance(to: Self.windowStart(containing: nowMilliseconds, length: length), length: length)
        let limit = min(max(requestedLimit, 0), Self.maxCount)
        let lengthMs = length * 1_000
        // Zero when the clock stepped back into an earlier window: the previous window then weighs in fully.
        let elapsedMs = max(0, nowMilliseconds - windowStart * 1_000)
        var headroom = limit * lengthMs - previous * (lengthMs - elapsedMs) - current * lengthMs
        let allowed = headroom >= lengthMs
        if allowed {
            current += 1
            unsyncedCurrent += 1
            headroom -= lengthMs
        }
        let wait = millisecondsUntilRoom(limit: limit, elapsedMs: elapsedMs, lengthMs: lengthMs)
        return RateLimitDecision(
            allowed: allowed,
            limit: limit,
            remaining: max(0, headroom / lengthMs),
            resetAt: windowStart + length,
            retryAfter: max(1, (wait + 999) / 1_000),
            policyWindowSeconds: length
        )
    }

    /// How long until the weighted count has decayed enough to admit one more request, assuming none arrive meanwhile.
    private func millisecondsUntilRoom(limit: Int, elapsedMs: Int, lengthMs: Int) -> Int {
        // Room now needs previous × (lengthMs − elapsed) ≤ spare × lengthMs, solved for the elapsed time.
        let spare = limit - current - 1
        if spare >= 0 {
            guard previous > 0 else { return 0 }
            return max(0, lengthMs - spare * lengthMs / previous - elapsedMs)
        }
        // This window is full: room comes only in the next one, as this window's count (then `previous`) decays.
        let untilNextWindow = lengthMs - elapsedMs
        let spareNext = limit - 1
        guard spareNext >= 0 else { return untilNextWindow }
        return untilNextWindow + max(0, lengthMs - spareNext * lengthMs / current)
    }

    /// Merges the shared store's total for `window`, which includes every replica's drained admissions (this one's
    /// too); returns whether the counter moved to a later window.
    ///
    /// Taking the maximum rather than adding makes absorbing idempotent and safe against totals read before this
    /// replica's latest deltas were written: the local count never goes down, and nothing is counted twice.
    @discardableResult
    mutating func absorb(total: Int, window: Int, length: Int) -> Bool {
        let moved = advance(to: window, length: length)
        let total = min(max(total, 0), Self.maxCount)
        if window == windowStart {
            current = min(Self.maxCount, max(current, total + unsyncedCurrent))
        } else if window == windowStart - length {
            previous = min(Self.maxCount, max(previous, total + unsyncedPrevious))
        }
        return moved
    }

    /// Hands over the admissions not yet synchronised, one `WindowCount` per window that has any, and forgets them.
    mutating func drainUnsynced(key: String, length: Int, into deltas: inout [WindowCount]) {
        if unsyncedPrevious > 0 {
            deltas.append(WindowCount(key: key, windowStart: windowStart - length, count: unsyncedPrevious))
            unsyncedPrevious = 0
        }
        if unsyncedCurrent > 0 {
            deltas.append(WindowCount(key: key, windowStart: windowStart, count: unsyncedCurrent))
            unsyncedCurrent = 0
        }
    }
}
