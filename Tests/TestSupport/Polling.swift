import Foundation

package enum Polling {
    /// Polls `probe` every 100 ms until it holds, for at most `seconds`; how long it took, or nil.
    package static func within(_ seconds: Double, _ probe: () async throws -> Bool) async throws -> Double? {
        let started = ContinuousClock.now
        while ContinuousClock.now - started < .seconds(seconds) {
            if try await probe() { return Double((ContinuousClock.now - started) / .milliseconds(1)) / 1_000 }
            try await Task.sleep(for: .milliseconds(100))
        }
        return nil
    }
}
