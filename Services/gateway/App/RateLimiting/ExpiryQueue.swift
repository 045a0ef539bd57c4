/// Keys in the order their latest windows began, so a shard finds keys that went quiet without scanning its table.
///
/// An entry is pushed whenever a key enters a new window, so a key that stays active leaves older, stale entries
/// behind; the shard recognises those by their window start and skips them. Each entry is pushed and popped once,
/// which keeps the upkeep amortised O(1) per request.
struct ExpiryQueue: Sendable {
    struct Entry: Sendable {
        var key: String
        var windowStart: Int
    }

    private var entries: [Entry] = []
    /// Index of the oldest entry still queued; popped entries stay in `entries` until `compact` drops them in bulk.
    private var head = 0

    var count: Int { entries.count - head }

    var first: Entry? { head < entries.count ? entries[head] : nil }

    mutating func append(_ entry: Entry) {
        entries.append(entry)
    }

    mutating func removeFirst() {
        head += 1
        if head == entries.count {
            entries.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 1_024, head * 2 >= entries.count {
            // Waiting for half the array to be dead makes the copy cost O(1) per pop.
            entries.removeSubrange(..<head)
            head = 0
        }
    }
}
