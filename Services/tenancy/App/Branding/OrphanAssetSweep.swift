import Foundation
import Logging
import ServiceCore
import ServiceLifecycle

/// Removes stored files that no asset row names: a file is written before its row and removed
/// after it, so a crash in between leaves at worst a file nobody points at (never a row pointing
/// at no file), and tenants removed with their rows leave theirs. Also removes temporaries of
/// interrupted writes. Files younger than `grace` are left alone: their upload may still be running.
struct OrphanAssetSweep: Service {
    let storage: any AssetStorage
    let assets: any BrandingRepository
    let grace: Duration
    let interval: Duration
    let logger: Logger

    func run() async throws {
        await repeatUntilShutdown(every: interval) { _ = await sweepOnce() }
    }

    /// One pass; returns how many files were removed.
    func sweepOnce(now: Date = Date()) async -> Int {
        do {
            let cutoff = now.addingTimeInterval(-Double(grace.components.seconds))
            let old = try await storage.list().filter { $0.modified < cutoff }.map(\.key)
            let ids = old.compactMap { UUID(uuidString: $0) }
            let kept = try await assets.existing(ids: ids, logger: logger)
            let orphans = old.filter { key in UUID(uuidString: key).map { !kept.contains($0) } ?? true }
            for key in orphans { try await storage.delete(key) }
            if !orphans.isEmpty { logger.notice("removed orphan branding files", metadata: ["count": "\(orphans.count)"]) }
            return orphans.count
        } catch {
            logger.warning("could not sweep branding files", metadata: ["error": "\(error)"])
            return 0
        }
    }
}
