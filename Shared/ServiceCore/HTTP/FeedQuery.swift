import Hummingbird

/// The query of a change-feed page (`/internal/gateway/...`): `changed_since` (Unix µs, default 0),
/// `after` (the feed's key of the last row seen; absent or empty before every row) and `limit` (1...1000,
/// default 500). Every problem is reported at once as 422.
package struct FeedQuery: Sendable {
    package var changedSince: Int64
    package var after: String?
    package var limit: Int

    /// - Parameters:
    ///   - isKey: whether a value of `after` has the feed's key form.
    ///   - keyProblem: what `after` must be, for the 422.
    package init(_ request: Request, keyProblem: String, isKey: (String) -> Bool) throws {
        let query = request.uri.queryParameters
        var problems: [String: [String]] = [:]
        let since = query["changed_since"].map { Int64(String($0)) } ?? 0
        if since == nil || since! < 0 { problems["changed_since", default: []].append("must be Unix microseconds, 0 or more") }
        let after = query["after"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
        if let after, !isKey(after) { problems["after", default: []].append(keyProblem) }
        let limit = query["limit"].map { Int(String($0)) } ?? 500
        if limit == nil || !(1...1_000).contains(limit!) { problems["limit", default: []].append("must be 1 to 1000") }
        guard problems.isEmpty, let since, let limit else { throw AppError.validation(problems) }
        self.changedSince = since
        self.after = after
        self.limit = limit
    }
}
