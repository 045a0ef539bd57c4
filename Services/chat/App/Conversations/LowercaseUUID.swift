import Foundation

/// A UUID that chat's JSON writes in lower case, as the other services write ids (Foundation's
/// `uuidString`, and so `JSONEncoder`, writes upper case, and clients compare ids as strings).
/// Reading takes either case, so JSON stored before (message sources, traces) still reads.
@propertyWrapper
struct LowercaseUUID: Codable, Sendable, Hashable {
    var wrappedValue: UUID

    init(wrappedValue: UUID) {
        self.wrappedValue = wrappedValue
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        guard let id = UUID(uuidString: try container.decode(String.self)) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not a UUID")
        }
        wrappedValue = id
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(wrappedValue.uuidString.lowercased())
    }
}

/// `LowercaseUUID` for an optional id: absent from the JSON when nil, as a plain `UUID?` would be.
@propertyWrapper
struct LowercaseOptionalUUID: Codable, Sendable, Hashable {
    var wrappedValue: UUID?

    init(wrappedValue: UUID?) {
        self.wrappedValue = wrappedValue
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            wrappedValue = nil
        } else {
            wrappedValue = try LowercaseUUID(from: decoder).wrappedValue
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let id = wrappedValue { try container.encode(id.uuidString.lowercased()) } else { try container.encodeNil() }
    }
}

extension KeyedEncodingContainer {
    /// Leaves a nil id out, as the synthesized coding of a plain optional does.
    mutating func encode(_ value: LowercaseOptionalUUID, forKey key: Key) throws {
        if let id = value.wrappedValue { try encode(id.uuidString.lowercased(), forKey: key) }
    }
}

extension KeyedDecodingContainer {
    /// A missing key is nil, as for a plain optional.
    func decode(_ type: LowercaseOptionalUUID.Type, forKey key: Key) throws -> LowercaseOptionalUUID {
        try decodeIfPresent(type, forKey: key) ?? LowercaseOptionalUUID(wrappedValue: nil)
    }
}
