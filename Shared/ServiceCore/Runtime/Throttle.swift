/// Says yes at most once per `interval`, the first time at once.
struct Throttle {
    let interval: Duration
    var last: ContinuousClock.Instant?

    init(interval: Duration) {
        self.interval = interval
    }

    mutating func isDue() -> Bool {
        let now = ContinuousClock.now
        if let last, now - last < interval { return false }
        last = now
        return true
    }
}
