import Logging
import ServiceCore
import ServiceLifecycle

/// Every `issuer.reloadInterval`, deletes the keys whose tokens have all expired (private halves
/// included) and reloads the rest, so this replica publishes a key another replica rotated in and
/// signs with it from its activation. Only for keys kept in the database.
struct SigningKeyMaintenance: Service {
    let issuer: TokenIssuer
    let repository: any SigningKeyRepository
    let logger: Logger

    func run() async throws {
        // The keys were loaded just before the server started.
        await repeatUntilShutdown(every: issuer.reloadInterval) {
            do {
                let removed = try await repository.prune(retention: issuer.retention, logger: logger)
                if removed > 0 { logger.notice("deleted retired signing keys", metadata: ["keys": "\(removed)"]) }
                try await issuer.reload(logger: logger)
            } catch {
                // The keys loaded before stay in use.
                logger.warning("could not reload the signing keys", metadata: ["error": "\(error)"])
            }
        }
    }
}
