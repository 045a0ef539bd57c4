import Hummingbird

/// The page a listing asks for in its query: `limit` (1-200, default 50) and `offset`
/// (0-1000000). Problems are added to the caller's, to be answered together as 422.
package struct Paging: Sendable {
    package var limit = 50
    package var offset = 0

    package init(_ request: Request, problems: inout [String: [String]]) {
        let query = request.uri.queryParameters
        if let raw = query["limit"] {
            if let value = Int(String(raw)), (1...200).contains(value) { limit = value } else { problems["limit"] = ["must be 1 to 200"] }
        }
        if let raw = query["offset"] {
            if let value = Int(String(raw)), (0...1_000_000).contains(value) { offset = value } else { problems["offset"] = ["must be 0 to 1000000"] }
        }
    }
}
