import Foundation
import HTTPTypes
import InternalAPI
import Logging

/// Tenant facts from tenancy, cached briefly so every chat message or sign-in does not cost a call.
package final class TenantDirectory: Sendable {
    private let cache: InternalLookupCache<TenantSummary>

    package init(tenancy: InternalClient, ttl: Duration) {
        self.cache = InternalLookupCache(client: tenancy, ttl: ttl)
    }

    /// nil when tenancy says the tenant does not exist; throws when tenancy cannot be asked.
    package func tenant(slug: String, logger: Logger) async throws -> TenantSummary? {
        // Only slug-shaped values reach tenancy's URL (and the cache).
        guard Self.isSlugShaped(slug) else { return nil }
        return try await cache.value(path: "/internal/tenants/by-slug/\(slug)", logger: logger)
    }

    package func tenant(id: UUID, logger: Logger) async throws -> TenantSummary? {
        try await cache.value(path: "/internal/tenants/\(id.uuidString.lowercased())", logger: logger)
    }

    /// Drops what is cached about tenant `id` (under its id and its slug): the next question asks
    /// tenancy. Called when tenancy's event says the tenant changed.
    package func forget(_ id: UUID) {
        cache.forget { $0.id == id }
    }

    package static func isSlugShaped(_ slug: String) -> Bool {
        !slug.isEmpty && slug.utf8.count <= 64
            && slug.utf8.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D }
    }
}
