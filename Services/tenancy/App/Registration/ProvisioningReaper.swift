import Foundation
import Logging
import ServiceCore
import ServiceLifecycle

/// Finishes the compensation of registrations that could not be undone at the time (auth or
/// billing unreachable, or the process stopped half-way): tenants left in `provisioning` for
/// longer than any registration takes are removed from billing, auth and tenancy, in that order.
struct ProvisioningReaper: Service {
    let tenants: any TenantRepository
    let registration: RegistrationService
    /// Age after which a `provisioning` tenant is certainly not a registration still running.
    let abandonedAfter: Duration
    let interval: Duration
    let logger: Logger

    func run() async throws {
        // Sleeps first: at start-up the migrations may not have run yet.
        await repeatUntilShutdown(every: interval) { _ = await reapOnce() }
    }

    /// One pass; returns how many abandoned registrations were fully removed.
    func reapOnce() async -> Int {
        let cutoff = Date().addingTimeInterval(-Double(abandonedAfter.components.seconds))
        do {
            let abandoned = try await tenants.abandonedProvisioning(before: cutoff, limit: 100, logger: logger)
            var removed = 0
            for tenant in abandoned {
                var logger = logger
                logger[metadataKey: "tenant_id"] = "\(tenant.id)"
                if await registration.undo(tenant, removeFromAuth: true, removeFromBilling: true, logger: logger) { removed += 1 }
            }
            return removed
        } catch {
            logger.warning("could not look for abandoned registrations", metadata: ["error": "\(error)"])
            return 0
        }
    }
}
