import Foundation

/// A Stripe request body: `application/x-www-form-urlencoded` with Stripe's bracket notation for
/// nested fields (`line_items[0][price_data][currency]=clp`, `metadata[plan]=pro`), in the order added.
struct StripeForm: Sendable, Equatable {
    private(set) var fields: [(key: String, value: String)] = []

    static func == (lhs: StripeForm, rhs: StripeForm) -> Bool {
        lhs.fields.map(\.key) == rhs.fields.map(\.key) && lhs.fields.map(\.value) == rhs.fields.map(\.value)
    }

    /// Adds `key=value`; a nil value adds nothing.
    mutating func add(_ key: String, _ value: String?) {
        guard let value else { return }
        fields.append((key, value))
    }

    mutating func add(_ key: String, _ value: Int64?) {
        add(key, value.map { String($0) })
    }

    /// `prefix[name]=value` for each entry, sorted by name so the body is the same every time.
    mutating func add(_ prefix: String, metadata: [String: String]) {
        for (name, value) in metadata.sorted(by: { $0.key < $1.key }) { add("\(prefix)[\(name)]", value) }
    }

    var encoded: String {
        fields.map { "\(Self.escape($0.key))=\(Self.escape($0.value))" }.joined(separator: "&")
    }

    /// Percent-encodes all but RFC 3986's unreserved characters (brackets too, as Stripe's own libraries do).
    static func escape(_ text: String) -> String { ProviderHTTP.escape(text) }
}
