import Foundation
import Hummingbird
import InternalAPI
import ServiceCore

/// `/internal/gateway/revocations`: voided sessions and users, as a change feed the gateway follows
/// so that a logout takes effect there within seconds without a call to auth per request. Only the
/// gateway may call it (`RequireCaller`, by its own key).
struct GatewayRevocationsController: Sendable {
    let sessions: any SessionRepository

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        group.get("revocations", use: revocations)
    }

    /// A page of the feed; `after` is `kind:subject` of the last row of the previous page.
    @Sendable func revocations(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<RevocationPage> {
        let query = try FeedQuery(request, keyProblem: "must be kind:subject from the last page") {
            !PostgresSessionRepository.feedKey($0).kind.isEmpty
        }
        let rows = try await sessions.revocations(
            after: FeedCursor(changedSince: query.changedSince, after: query.after ?? ""), limit: query.limit, logger: context.logger
        )
        let next = rows.count == query.limit ? rows.last.map { FeedCursor(changedSince: $0.updatedAtMicroseconds, after: $0.feedKey) } : nil
        return JSONResponse(RevocationPage(revocations: rows, next: next))
    }
}
