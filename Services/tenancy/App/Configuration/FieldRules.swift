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

    /// Trimmed text of 1...`max` characters (Unicode scalars, as JSON Schema's `maxLength` counts).
    mutating func text(_ value: String?, _ field: String, max: Int) -> String? {
        guard let value else { return nil }
        let trimmed = value.trimmingCharacters(in: .whitespacesAndNewlines)
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
    mutating func oneOf<Choice: RawRepresentable & CaseIterable>(_ value: String?, _ field: String, as: Choice.Type) -> Choice?
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

    /// `#rrggbb`, stored lower-cased.
    mutating func hexColor(_ value: String?, _ field: String) -> String? {
        guard let value else { return nil }
        let bytes = Array(value.utf8)
        guard bytes.count == 7, bytes[0] == UInt8(ascii: "#"), bytes.dropFirst().allSatisfy({ $0.isHexDigit }) else {
            add(field, "must be a colour like #1a2b3c")
            return nil
        }
        return value.lowercased()
    }

    /// A JSON object whose encoding is at most `maxBytes`, as the JSON text to store.
    mutating func jsonObject(_ value: [String: JSONValue]?, _ field: String, maxBytes: Int) -> String? {
        guard let value else { return nil }
        guard let data = try? JSONCoding.encoder.encode(value), data.count <= maxBytes else {
            add(field, "must be a JSON object of at most \(maxBytes) bytes")
            return nil
        }
        return String(decoding: data, as: UTF8.self)
    }
}

extension UInt8 {
    fileprivate var isHexDigit: Bool {
        (0x30...0x39).contains(self) || (0x41...0x46).contains(self) || (0x61...0x66).contains(self)
    }
}
