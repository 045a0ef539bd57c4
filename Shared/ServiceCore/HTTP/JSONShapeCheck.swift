/// A single pass over a JSON body, before it is decoded, for what `JSONDecoder` lets through
/// silently or handles badly: an object naming the same key twice (which one wins differs between
/// parsers, so a proxy and a service could read different requests) and nesting deeper than any
/// request of ours needs. Syntax errors are left to the decoder.
package enum JSONShapeCheck {
    package static let maxDepth = 64

    package enum Problem: Error, Equatable {
        case duplicateKey(String)
        case tooDeep
    }

    private struct Frame {
        var isObject: Bool
        var expectingKey: Bool
        var keys: Set<String>
    }

    package static func check(_ bytes: some Collection<UInt8>) throws(Problem) {
        var stack: [Frame] = []
        var index = bytes.startIndex
        while index != bytes.endIndex {
            let byte = bytes[index]
            bytes.formIndex(after: &index)
            switch byte {
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                guard stack.count < maxDepth else { throw .tooDeep }
                let isObject = byte == UInt8(ascii: "{")
                stack.append(Frame(isObject: isObject, expectingKey: isObject, keys: []))
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                if !stack.isEmpty { stack.removeLast() }
            case UInt8(ascii: ","):
                if let last = stack.indices.last, stack[last].isObject { stack[last].expectingKey = true }
            case UInt8(ascii: "\""):
                guard let last = stack.indices.last, stack[last].isObject, stack[last].expectingKey else {
                    skipString(bytes, from: &index)
                    continue
                }
                let key = readString(bytes, from: &index)
                stack[last].expectingKey = false
                guard stack[last].keys.insert(key).inserted else { throw .duplicateKey(key) }
            default:
                continue
            }
        }
    }

    /// Moves past a string that is not a key (its content is never needed) and its closing quote.
    private static func skipString<C: Collection<UInt8>>(_ bytes: C, from index: inout C.Index) {
        while index != bytes.endIndex {
            let byte = bytes[index]
            bytes.formIndex(after: &index)
            if byte == UInt8(ascii: "\"") { return }
            if byte == UInt8(ascii: "\\"), index != bytes.endIndex { bytes.formIndex(after: &index) }
        }
    }

    /// Reads a key's content after its opening quote, unescaped, up to and past its closing quote.
    private static func readString<C: Collection<UInt8>>(_ bytes: C, from index: inout C.Index) -> String {
        var scalars = String.UnicodeScalarView()
        var raw: [UInt8] = []
        func flushRaw() {
            scalars.append(contentsOf: String(decoding: raw, as: UTF8.self).unicodeScalars)
            raw.removeAll(keepingCapacity: true)
        }
        var pendingHighSurrogate: UInt32?
        while index != bytes.endIndex {
            let byte = bytes[index]
            bytes.formIndex(after: &index)
            if byte == UInt8(ascii: "\"") { break }
            guard byte == UInt8(ascii: "\\"), index != bytes.endIndex else {
                raw.append(byte)
                continue
            }
            let escaped = bytes[index]
            bytes.formIndex(after: &index)
            switch escaped {
            case UInt8(ascii: "u"):
                var value: UInt32 = 0
                for _ in 0..<4 where index != bytes.endIndex {
                    value = value << 4 | UInt32(hexValue(bytes[index]))
                    bytes.formIndex(after: &index)
                }
                flushRaw()
                if (0xD800...0xDBFF).contains(value) {
                    pendingHighSurrogate = value
                    continue
                }
                if let high = pendingHighSurrogate, (0xDC00...0xDFFF).contains(value) {
                    value = 0x10000 + ((high - 0xD800) << 10) + (value - 0xDC00)
                }
                pendingHighSurrogate = nil
                scalars.append(Unicode.Scalar(value) ?? "\u{FFFD}")
            case UInt8(ascii: "n"): raw.append(0x0A)
            case UInt8(ascii: "t"): raw.append(0x09)
            case UInt8(ascii: "r"): raw.append(0x0D)
            case UInt8(ascii: "b"): raw.append(0x08)
            case UInt8(ascii: "f"): raw.append(0x0C)
            default: raw.append(escaped)
            }
        }
        flushRaw()
        return String(scalars)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8 {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: 0
        }
    }
}

/// Finds a NUL (U+0000) in the strings a request actually decoded into: valid JSON, but no
/// PostgreSQL text column can hold it, and bcrypt stops reading at it. Keys and values the request
/// type does not read are never looked at, so they may hold anything.
package enum DecodedNULCheck {
    /// The snake_case name of the first decoded field holding NUL, `body` for a bare string, or nil.
    package static func field(in value: Any) -> String? {
        find(value, label: nil, depth: 0).map { $0.map(JSONCoding.snakeCase) ?? "body" }
    }

    /// The Swift property name holding NUL (`.some(nil)` for a bare string), or nil; names are
    /// turned into snake_case only for the one that is reported, not for every field walked.
    private static func find(_ value: Any, label: String?, depth: Int) -> String?? {
        if let string = value as? String {
            return string.unicodeScalars.contains("\u{0}") ? .some(label) : nil
        }
        guard depth < 32 else { return nil }
        for child in Mirror(reflecting: value).children {
            // Optionals ("some"), array elements (no label) and dictionary pairs (".0", ".1") keep the field's name.
            let name = child.label.flatMap { $0 == "some" || $0.hasPrefix(".") ? nil : $0 } ?? label
            if let found = find(child.value, label: name, depth: depth + 1) { return found }
        }
        return nil
    }
}
