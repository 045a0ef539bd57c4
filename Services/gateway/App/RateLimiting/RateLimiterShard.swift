/// The part of the limiter behind one lock: per-key counters up to a fixed capacity, the order they expire in, and
/// one overflow counter shared by the keys that found no room.
///
/// A full shard never resets a live counter to make room: otherwise a flood of fresh addresses could flush another
/// client's login limit. It only drops keys whose windows have both ended; when there are none, the newcomer is
/// counted in the overflow counter, so a flood of distinct keys is limited as one group.
struct RateLimiterShard: Sendable {
    /// Expired queue entries popped on each push beyond what room-making needs; more than one so the backlog drains
    /// faster than it can grow.
    private static let tidyBudget = 2

    let capacity: Int
    /// Window length in seconds.
    let windowLength: Int
    private(set) var counters: [String: SlidingWindowCounter] = [:]
    private(set) var expiry = ExpiryQueue()
    private(set) var overflow = SlidingWindowCounter(windowStart: 0)

    init(capacity: Int, windowLength: Int) {
        self.capacity = capacity
        self.windowLength = windowLength
    }

    mutating func check(key: String, limit: Int, nowMilliseconds: Int) -> RateLimitDecision {
        if let index = counters.index(forKey: key) {
            let windowBefore = counters.values[index].windowStart
            let decision = counters.values[index].admit(limit: limit, nowMilliseconds: nowMilliseconds, length: windowLength)
            let windowAfter = counters.values[index].windowStart
            if windowAfter != windowBefore { noteWindow(of: key, startingAt: windowAfter, nowMilliseconds: nowMilliseconds) }
            return decision
        }
        guard makeRoom(nowMilliseconds: nowMilliseconds) else {
            return overflow.admit(limit: limit, nowMilliseconds: nowMilliseconds, length: windowLength)
        }
        var counter = SlidingWindowCounter(
            windowStart: SlidingWindowCounter.windowStart(containing: nowMilliseconds, length: windowLength)
        )
        let decision = counter.admit(limit: limit, nowMilliseconds: nowMilliseconds, length: windowLength)
        counters[key] = counter
        noteWindow(of: key, startingAt: counter.windowStart, nowMilliseconds: nowMilliseconds)
        return decision
    }

    /// Merges one shared-store total (see `SlidingWindowCounter.absorb`). Totals for windows that cannot affect a
    /// decision now are ignored, and so are those for windows not yet begun here (another replica's clock is ahead).
    mutating func absorb(_ total: WindowCount, nowMilliseconds: Int) {
        let nowWindow = SlidingWindowCounter.windowStart(containing: nowMilliseconds, length: windowLength)
        guard total.count > 0, total.windowStart == nowWindow || total.windowStart == nowWindow - windowLength else { return }
        if let index = counters.index(forKey: total.key) {
            if counters.values[index].absorb(total: total.count, window: total.windowStart, length: windowLength) {
                noteWindow(of: total.key, startingAt: total.windowStart, nowMilliseconds: nowMilliseconds)
            }
            return
        }
        // A key only other replicas have seen gets a counter only if there is room; the overflow counter is local.
        guard makeRoom(nowMilliseconds: nowMilliseconds) else { return }
        var counter = SlidingWindowCounter(windowStart: total.windowStart)
        counter.absorb(total: total.count, window: total.windowStart, length: windowLength)
        counters[total.key] = counter
        noteWindow(of: total.key, startingAt: total.windowStart, nowMilliseconds: nowMilliseconds)
    }

    /// Admissions made here since the last drain, per key and window (the overflow counter is local and not included).
    mutating func drainUnsynced() -> [WindowCount] {
        var deltas: [WindowCount] = []
        // Walking by index, not over `counters.indices`, which would hold a second reference to the storage and make
        // every mutation below copy the whole table.
        var index = counters.startIndex
        while index != counters.endIndex {
            counters.values[index].drainUnsynced(key: counters.keys[index], length: windowLength, into: &deltas)
            counters.formIndex(after: &index)
        }
        return deltas
    }

    private mutating func noteWindow(of key: String, startingAt windowStart: Int, nowMilliseconds: Int) {
        expiry.append(ExpiryQueue.Entry(key: key, windowStart: windowStart))
        for _ in 0..<Self.tidyBudget {
            guard popExpiredEntry(nowMilliseconds: nowMilliseconds) else { return }
        }
    }

    /// Frees a slot if the table is full and some key has expired; false if every remembered key is still live.
    private mutating func makeRoom(nowMilliseconds: Int) -> Bool {
        while counters.count >= capacity {
            guard popExpiredEntry(nowMilliseconds: nowMilliseconds) else { return false }
        }
        return true
    }

    /// Pops the oldest queue entry if its window has expired, dropping its key unless the key has moved on to a later
    /// window since; false when the oldest entry is still live (or there is none).
    private mutating func popExpiredEntry(nowMilliseconds: Int) -> Bool {
        guard let entry = expiry.first,
            SlidingWindowCounter.hasExpired(windowStart: entry.windowStart, nowMilliseconds: nowMilliseconds, length: windowLength)
        else { return false }
        expiry.removeFirst()
        if let index = counters.index(forKey: entry.key), counters.values[index].windowStart == entry.windowStart {
            counters.remove(at: index)
        }
        return true
    }
}
