/// One key's request count in one aligned window: the unit gateway replicas exchange to share limits.
struct WindowCount: Hashable, Sendable {
    var key: String
    /// Unix seconds at which the window began; always a multiple of the window length.
    var windowStart: Int
    var count: Int
}
