import Foundation
import InternalAPI
import Synchronization

/// What the gateway enforces per tenant, as last heard from tenancy: its status (a suspended
/// tenant's authenticated traffic is refused), its own rate limit, replacing the default, and the
/// origins its widget runs on (cross-origin calls to the widget's routes are let through from
/// those). Read on every authenticated request; written by a `ChangeFeedSync` following tenancy's feed.
final class TenantPolicies: Sendable {
    struct Policy: Sendable, Equatable {
        var suspended: Bool
        var rateLimitPerMinute: Int
        var allowedOrigins: [String] = []
    }

    private struct State {
        var byTenant: [String: Policy] = [:]
        /// Origin → how many tenants that are not suspended list it.
        var widgetOrigins: [String: Int] = [:]
    }

    private let state = Mutex(State())

    /// The tenant's policy (keyed by its id in lower case, as tokens carry it); nil when unknown,
    /// e.g. a tenant made since the last refresh: the defaults apply.
    func policy(for tenantID: String) -> Policy? {
        state.withLock { $0.byTenant[tenantID] }
    }

    /// Whether a tenant that is not suspended lists `origin` (compared in lower case) for its widget.
    func isWidgetOrigin(_ origin: String) -> Bool {
        let origin = origin.lowercased()
        return state.withLock { $0.widgetOrigins[origin] != nil }
    }

    func apply(_ policies: [TenantPolicy]) {
        state.withLock { state in
            for policy in policies {
                let id = policy.tenantId.lowercased()
                let new = Policy(
                    suspended: policy.status == "suspended", rateLimitPerMinute: policy.rateLimitPerMinute,
                    allowedOrigins: Array(Set((policy.allowedOrigins ?? []).map { $0.lowercased() }))
                )
                if let old = state.byTenant[id], !old.suspended {
                    for origin in old.allowedOrigins {
                        let left = (state.widgetOrigins[origin] ?? 1) - 1
                        state.widgetOrigins[origin] = left > 0 ? left : nil
                    }
                }
                if !new.suspended {
                    for origin in new.allowedOrigins { state.widgetOrigins[origin, default: 0] += 1 }
                }
                state.byTenant[id] = new
            }
        }
    }

    var count: Int { state.withLock { $0.byTenant.count } }
}
