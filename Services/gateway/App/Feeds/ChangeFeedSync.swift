import AsyncHTTPClient
import Foundation
import HTTPTypes
import InternalAPI
import Logging
import NIOCore
import NIOHTTP1
import ServiceCore
import ServiceLifecycle

/// Follows a service's change feed for the gateway (`/internal/gateway/...`: tenant policies from
/// tenancy, revocations from auth) in the background: everything at start, then what changed,
/// every `interval`. A change reaches every request within about `interval` plus one call. While
/// the service cannot be reached, the last known state stays.
struct ChangeFeedSync<Page: ChangeFeedPage>: Service {
    /// What the feed carries, for the logs ("tenant policies").
    let name: String
    let service: String
    /// The feed's URL without its query.
    let url: String
    let identity: CallerIdentity
    let http: HTTPClient
    let interval: Duration
    let logger: Logger
    /// Where a cursor starts before every row.
    let firstKey: String
    let apply: @Sendable (Page) -> Void
    /// Called after every read of the feed to its end (the first one is what matters).
    var caughtUp: @Sendable () -> Void = {}

    /// Read again on every pass: a change committed late with an earlier timestamp is still seen.
    static var overlapMicroseconds: Int64 { 5_000_000 }

    func run() async throws {
        var since: Int64 = 0
        var failing = false
        while !Task.isShuttingDownGracefully {
            do {
                let newest = try await pull(since: max(0, since - (since == 0 ? 0 : Self.overlapMicroseconds)))
                since = max(since, newest)
                caughtUp()
                if failing { logger.notice("\(name): \(service) answers again") }
                failing = false
            } catch {
                if !failing {
                    logger.warning("\(name): \(service) unreachable, keeping the last known", metadata: ["error": "\(error)"])
                }
                failing = true
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }

    /// Reads every page changed after `since`; returns the newest change seen (Unix µs).
    private func pull(since: Int64) async throws -> Int64 {
        var cursor = FeedCursor(changedSince: since, after: firstKey)
        var newest = since
        while true {
            let after = cursor.after.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
            let pageURL = "\(url)?changed_since=\(cursor.changedSince)&after=\(after)&limit=1000"
            var request = HTTPClientRequest(url: pageURL)
            let token = try await identity.token(for: service, method: .get, target: InternalClient.requestTarget(of: pageURL))
            request.headers.add(name: "X-Caller-Token", value: token)
            let response = try await http.execute(request, timeout: .seconds(5), logger: logger)
            let body = try await response.body.collect(upTo: 16 << 20)
            guard response.status == .ok else {
                throw InternalCallError.rejected(service: service, status: Int(response.status.code), body: nil)
            }
            let page = try JSONCoding.decoder.decode(Page.self, from: Data(body.readableBytesView))
            apply(page)
            if let changed = page.newestChange { newest = max(newest, changed) }
            guard let next = page.next else { return newest }
            cursor = next
        }
    }
}
