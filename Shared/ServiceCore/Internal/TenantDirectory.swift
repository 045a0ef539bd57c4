import Foundation
import HTTPTypes
import InternalAPI
import Logging
import Synchronization

/// Tenant facts from tenancy, cached briefly so every chat message or sign-in does not cost a call.
package final class TenantDirectory: Sendable {
    private struct Entry {
        var tenant: TenantSummary
        var fetchedAt: ContinuousClock.Instant
    }

    private let tenancy: InternalClient
    private let ttl: Duration
    private let limit = 10_000
    private let cache = Mutex<[String: Entry]>([:])

    package init(tenancy: InternalClient, ttl: Duration) {
        self.tenancy = tenancy
        self.ttl = ttl
    }

    /// nil when tenancy says the tenant does not exist; throws when tenancy cannot be asked.
    package func tenant(slug: String, logger: Logger) async throws -> TenantSummary? {
        // Only slug-shaped values reach tenancy's URL (and the cache).
        guard Self.isSlugShaped(slug) else { return nil }
        return try await lookup(key: "slug:\(slug)", path: "/internal/tenants/by-slug/\(slug)", logger: logger)
    }

    package func tenant(id: UUID, logger: Logger) async throws -> TenantSummary? {
        try await lookup(key: "id:\(id)", path: "/internal/tenants/\(id.uuidString.lowercased())", logger: logger)
    }

    /// Drops what is cached about tenant `id` (under its id and its slug): the next question asks
    /// tenancy. Called when tenancy's event says the tenant changed.
    package func forget(_ id: UUID) {
        cache.withLock { cache in cache = cache.filter { $0.value.tenant.id != id } }
    }

    package static func isSlugShaped(_ slug: String) -> Bool {
        !slug.isEmpty && slug.utf8.count <= 64
            && slug.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D }
    }

    private func lookup(key: String, path: String, logger: Logger) async throws -> TenantSummary? {
        let now = ContinuousClock.now
        if let entry = cache.withLock({ $0[key] }), now - entry.fetchedAt < ttl { return entry.tenant }
        do {
            let tenant = try await tenancy.send(.get, path, as: TenantSummary.self, logger: logger)
            cache.withLock { cache in
                if cache.count >= limit { cache.removeAll(keepingCapacity: true) }
                cache[key] = Entry(tenant: tenant, fetchedAt: now)
            }
            return tenant
        } catch InternalCallError.rejected(_, 404, _) {
            return nil
        } catch let error as InternalCallError {
            throw error.publicError
        }
    }
}
