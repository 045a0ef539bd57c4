import Foundation
import InternalAPI
import Synchronization

/// What the gateway enforces per tenant, as last heard from tenancy: its status (a suspended
/// tenant's authenticated traffic is refused) and its own rate limit, replacing the default.
/// Read on every authenticated request; written by a `ChangeFeedSync` following tenancy's feed.
final class TenantPolicies: Sendable {
    struct Policy: Sendable, Equatable {
        var suspended: Bool
        var rateLimitPerMinute: Int
    }

    private let byTenant = Mutex<[String: Policy]>([:])

    /// The tenant's policy (keyed by its id in lower case, as tokens carry it); nil when unknown,
    /// e.g. a tenant made since the last refresh: the defaults apply.
    func policy(for tenantID: String) -> Policy? {
        byTenant.withLock { $0[tenantID] }
    }

    func apply(_ policies: [TenantPolicy]) {
        byTenant.withLock { byTenant in
            for policy in policies {
                byTenant[policy.tenantId.lowercased()] = Policy(
                    suspended: policy.status == "suspended", rateLimitPerMinute: policy.rateLimitPerMinute
                )
            }
        }
    }

    var count: Int { byTenant.withLock { $0.count } }
}
