import Foundation
import HTTPTypes
import InternalAPI
import Logging
import ServiceCore
import Synchronization

/// Asks billing, before each user message, whether the tenant may send one more
/// (`GET /internal/entitlements/{tenant_id}`, reused up to `ttl`). When billing cannot answer, the
/// last answer it gave stands; with none, messages are allowed for `grace` from the first failed
/// question, then refused with 503. A 404 (billing does not know the tenant yet) counts as no answer.
final class QuotaGate: Sendable {
    private let entitlements: InternalLookupCache<TenantEntitlement>
    private let grace: Duration
    /// When billing first failed to answer for a tenant with no answer known.
    private let unansweredSince = Mutex<[UUID: ContinuousClock.Instant]>([:])

    init(billing: InternalClient, ttl: Duration, grace: Duration) {
        self.entitlements = InternalLookupCache(client: billing, ttl: ttl)
        self.grace = grace
    }

    /// Throws 402 `QUOTA_EXCEEDED` when billing says no, 503 when billing has been silent past the grace.
    func check(tenantID: UUID, logger: Logger) async throws {
        let path = "/internal/entitlements/\(tenantID.uuidString.lowercased())"
        var entitlement: TenantEntitlement?
        do {
            entitlement = try await entitlements.value(path: path, logger: logger)
            if entitlement == nil { logger.warning("billing has no entitlement for the tenant", metadata: ["tenant_id": "\(tenantID)"]) }
        } catch {
            logger.warning("billing's entitlement unavailable", metadata: ["tenant_id": "\(tenantID)", "error": "\(error)"])
            entitlement = entitlements.lastKnown(path: path)
        }
        guard let entitlement else {
            let now = ContinuousClock.now
            let since = unansweredSince.withLock { table in
                if table.count > 10_000 { table.removeAll() }
                if let since = table[tenantID] { return since }
                table[tenantID] = now
                return now
            }
            guard now - since < grace else {
                throw AppError.unavailable("The billing service is unavailable; try again shortly", code: "UPSTREAM_UNAVAILABLE")
            }
            return
        }
        unansweredSince.withLock { _ = $0.removeValue(forKey: tenantID) }
        guard entitlement.chatAllowed else {
            throw AppError(
                HTTPResponse.Status(code: 402, reasonPhrase: "Payment Required"), code: "QUOTA_EXCEEDED",
                detail: entitlement.reason ?? "This account cannot answer more messages under its current plan"
            )
        }
    }
}
