import Synchronization

/// Runs work that may not honour cancellation (a PostgresNIO query on a connection the server has
/// just dropped can outlive its cancellation) without letting it hold up the caller.
package enum Abandon {
    /// Returns `operation`'s result, unless `trigger` returns first: then `operation` is cancelled
    /// and left to end on its own, and this throws `error()` at once. Cancelling the caller does the
    /// same with `CancellationError`.
    package static func run<T: Sendable>(
        _ operation: @escaping @Sendable () async throws -> T,
        when trigger: @escaping @Sendable () async -> Void,
        throwing error: @escaping @Sendable () -> any Error
    ) async throws -> T {
        let race = Race<T>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                race.install(continuation)
                let watcher = Task {
                    await trigger()
                    if !Task.isCancelled { race.finish(.failure(error())) }
                }
                let work = Task {
                    do {
                        race.finish(.success(try await operation()))
                    } catch {
                        race.finish(.failure(error))
                    }
                }
                race.attach([watcher, work])
            }
        } onCancel: {
            race.finish(.failure(CancellationError()))
        }
    }

    /// The first result wins and cancels every task of the race; later results are dropped.
    private final class Race<T: Sendable>: Sendable {
        private struct State {
            var continuation: CheckedContinuation<T, any Error>?
            var result: Result<T, any Error>?
            var tasks: [Task<Void, Never>] = []
        }

        private let state = Mutex(State())

        func install(_ continuation: CheckedContinuation<T, any Error>) {
            let early = state.withLock { state -> Result<T, any Error>? in
                guard let result = state.result else {
                    state.continuation = continuation
                    return nil
                }
                return result
            }
            if let early { continuation.resume(with: early) }
        }

        func attach(_ tasks: [Task<Void, Never>]) {
            let finished = state.withLock { state in
                state.tasks = tasks
                return state.result != nil
            }
            if finished { tasks.forEach { $0.cancel() } }
        }

        func finish(_ result: Result<T, any Error>) {
            let won = state.withLock { state -> (CheckedContinuation<T, any Error>?, [Task<Void, Never>])? in
                guard state.result == nil else { return nil }
                state.result = result
                defer { state.continuation = nil }
                return (state.continuation, state.tasks)
            }
            guard let (continuation, tasks) = won else { return }
            continuation?.resume(with: result)
            tasks.forEach { $0.cancel() }
        }
    }
}
