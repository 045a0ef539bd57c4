import Logging
import ServiceCore
import ServiceLifecycle

/// Removes, every `interval`, the rows that can no longer matter: expired refresh tokens and
/// sessions (a day after their end), revocations past the life of every token they void, and
/// API keys a month after they stopped working.
struct SessionPruner: Service {
    let sessions: any SessionRepository
    let interval: Duration
    let logger: Logger

    func run() async throws {
        // Sleeps first: at start-up the migrations may not have run yet.
        await repeatUntilShutdown(every: interval) {
            do {
                let removed = try await sessions.prune(logger: logger)
                if removed > 0 { logger.info("pruned expired sessions, tokens and revocations", metadata: ["rows": "\(removed)"]) }
            } catch {
                logger.warning("could not prune expired sessions", metadata: ["error": "\(error)"])
            }
        }
    }
}
