import Foundation
import InternalAPI
import ServiceCore

/// The checks tenancy's configuration endpoints share. Each check takes an optional value (absent or
/// `null` in a partial update: nothing to check, nothing to change), records what is wrong with it
/// under the field's snake_case name, and returns the value as it is to be stored (trimmed,
/// normalised) or nil. `finish()` throws one 422 naming every bad field, so nothing is changed.
struct FieldRules {
    private(set) var problems: [String: [String]] = [:]

    mutating func add(_ field: String, _ message: String) {
        problems[field, default: []].append(message)
    }

    func finish() throws {
        guard problems.isEmpty else { throw AppError.validation(problems) }
    }

    /// White space as JSON Schema patterns (ECMA-262 `\s`) mean it, so a string the API's schema calls
    /// blank is refused here and no other: Foundation's set without U+0085 (NEL), with U+FEFF.
    static let whiteSpace: CharacterSet = {
        var set = CharacterSet.whitespacesAndNewlines
        set.remove("\u{85}")
        set.insert("\u{FEFF}")
        return set
    }()

    /// Trimmed text of 1...`max` characters (Unicode scalars, as JSON Schema's `maxLength` counts).
    mutating func text(_ value: String?, _ field: String, max: Int) -> String? {
        guard let value else { return nil }
        let trimmed = value.trimmingCharacters(in: Self.whiteSpace)
        if trimmed.isEmpty {
            add(field, "must not be blank")
            return nil
        }
        if trimmed.unicodeScalars.count > max {
            add(field, "must be at most \(max) characters")
            return nil
        }
        return trimmed
    }

    /// One of an enumeration's raw values, exactly.
    mutating func oneOf<Choice: RawRepresentable & CaseIterable>(_ value: String?, _ field: String, as choice: Choice.Type) -> Choice?
    where Choice.RawValue == String {
        guard let value else { return nil }
        guard let choice = Choice(rawValue: value) else {
            add(field, "must be one of \(Choice.allCases.map(\.rawValue).joined(separator: ", "))")
            return nil
        }
        return choice
    }

    mutating func within<Number: Comparable & CustomStringConvertible>(
        _ value: Number?, _ field: String, _ range: ClosedRange<Number>
    ) -> Number? {
        guard let value else { return nil }
        guard range.contains(value) else {
            add(field, "must be between \(range.lowerBound) and \(range.upperBound)")
            return nil
        }
        return value
    }

    /// A whole number in `range`. Integer fields are decoded as `Double` and checked here: Foundation's
    /// decoder refuses `100.5` for an `Int` as if the whole body were not JSON (400), not naming the field.
    mutating func wholeNumber(_ value: Double?, _ field: String, _ range: ClosedRange<Int>) -> Int? {
        guard let value else { return nil }
        guard value.rounded() == value, value >= Double(range.lowerBound), value <= Double(range.upperBound) else {
            add(field, "must be a whole number between \(range.lowerBound) and \(range.upperBound)")
            return nil
        }
        return Int(value)
    }

    /// `#rrggbb` (surrounding whitespace ignored), stored lower-cased.
    mutating func hexColor(_ value: String?, _ field: String) -> String? {
        guard let value = value?.trimmingCharacters(in: .whitespacesAndNewlines) else { return nil }
        let bytes = Array(value.utf8)
        guard bytes.count == 7, bytes[0] == UInt8(ascii: "#"), bytes.dropFirst().allSatisfy({ $0.isHexDigit }) else {
            add(field, "must be a colour like #1a2b3c")
            return nil
        }
        return value.lowercased()
    }

    /// A flat JSON object a tenant defines (`store_context`, `custom_settings`): at most
    /// `flatObjectMaxKeys` keys of 1...100 characters, each value a string of at most 1000 characters,
    /// a number, a boolean or null (no nesting: bounded, and every field checkable). Returned as the
    /// JSON text to store.
    mutating func flatObject(_ value: [String: JSONValue]?, _ field: String) -> String? {
        guard let value else { return nil }
        let before = problems.count
        if value.count > Self.flatObjectMaxKeys { add(field, "must have at most \(Self.flatObjectMaxKeys) keys") }
        for (key, item) in value.sorted(by: { $0.key < $1.key }) {
            if key.isEmpty || key.unicodeScalars.count > 100 { add(field, "keys must be 1-100 characters") }
            switch item {
            case .array, .object: add("\(field).\(key.prefix(100))", "must be a string, a number, a boolean or null")
            case .string(let text) where text.unicodeScalars.count > 1000: add("\(field).\(key.prefix(100))", "must be at most 1000 characters")
            default: break
            }
        }
        guard problems.count == before, let data = try? JSONCoding.encoder.encode(value) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }

    static let flatObjectMaxKeys = 50
}

extension UInt8 {
    fileprivate var isHexDigit: Bool {
        (0x30...0x39).contains(self) || (0x41...0x46).contains(self) || (0x61...0x66).contains(self)
    }
}
