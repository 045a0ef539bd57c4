import AsyncHTTPClient
import Foundation
import InternalAPI
import Logging
import NIOCore
import NIOHTTP1
import ServiceCore
import ServiceLifecycle

/// Follows tenancy's tenant-policy feed (`/internal/gateway/tenant-policies`) in the background:
/// everything at start, then what changed, every `interval`. A change reaches every request within
/// about `interval` plus one call. While tenancy cannot be reached, the last known policies stay.
struct TenantPolicySync: Service {
    let policies: TenantPolicies
    let tenancyURL: String
    let identity: CallerIdentity
    let http: HTTPClient
    let interval: Duration
    let logger: Logger

    /// Read again on every pass: a change committed late with an earlier `updated_at` is still seen.
    static let overlapMicroseconds: Int64 = 5_000_000

    func run() async throws {
        var since: Int64 = 0
        var failing = false
        while !Task.isShuttingDownGracefully {
            do {
                let newest = try await pull(since: max(0, since - (since == 0 ? 0 : Self.overlapMicroseconds)))
                since = max(since, newest)
                if failing { logger.notice("tenant policies: tenancy answers again", metadata: ["tenants": "\(policies.count)"]) }
                failing = false
            } catch {
                if !failing {
                    logger.warning("tenant policies: tenancy unreachable, keeping the last known", metadata: ["error": "\(error)"])
                }
                failing = true
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }

    /// Reads every page changed after `since`; returns the newest change seen (Unix µs).
    private func pull(since: Int64) async throws -> Int64 {
        var cursor = TenantPolicyCursor(changedSince: since, after: TenantPolicyCursor.noTenant)
        var newest = since
        while true {
            var request = HTTPClientRequest(
                url: "\(tenancyURL)/internal/gateway/tenant-policies?changed_since=\(cursor.changedSince)&after=\(cursor.after)&limit=1000"
            )
            request.headers.add(name: "X-Caller-Token", value: try await identity.token(for: "tenancy"))
            let response = try await http.execute(request, timeout: .seconds(5), logger: logger)
            let body = try await response.body.collect(upTo: 16 << 20)
            guard response.status == .ok else {
                throw InternalCallError.rejected(service: "tenancy", status: Int(response.status.code), body: nil)
            }
            let page = try JSONCoding.decoder.decode(TenantPolicyPage.self, from: Data(body.readableBytesView))
            policies.apply(page.policies)
            if let last = page.policies.last { newest = max(newest, last.updatedAtMicroseconds) }
            guard let next = page.next else { return newest }
            cursor = next
        }
    }
}
