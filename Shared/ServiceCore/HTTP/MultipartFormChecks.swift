import Foundation

/// The parts of reading a `multipart/form-data` upload that do not depend on the parser (services
/// parse with multipart-kit): the boundary, a pre-check that keeps the parser from trapping, and the
/// client's file name made safe for display. Shared by tenancy's branding and chat's uploads.
package enum MultipartFormChecks {
    /// The boundary of a `multipart/form-data` content type, or nil for any other type.
    package static func boundary(ofContentType contentType: String?) -> String? {
        guard let contentType else { return nil }
        let parameters = contentType.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        guard parameters.first?.lowercased() == "multipart/form-data" else { return nil }
        for parameter in parameters.dropFirst() {
            let pair = parameter.split(separator: "=", maxSplits: 1).map(String.init)
            guard pair.count == 2, pair[0].trimmingCharacters(in: .whitespaces).lowercased() == "boundary" else { continue }
            var value = pair[1].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
            // RFC 2046: 1 to 70 characters.
            return (1...70).contains(value.utf8.count) ? value : nil
        }
        return nil
    }

    package static let malformed = AppError.badRequest("Request body is not valid multipart/form-data", code: "MALFORMED_MULTIPART")

    /// multipart-kit 4.7.1 looks each byte of a part's header names up in a 128-entry table, so a
    /// byte of 0x80 or above there traps (the whole process stops). This walks every header block
    /// the parser could enter — after each `--boundary` — as the parser does, and answers false
    /// when a header name holds such a byte. Header values (UTF-8 file names) are left alone.
    package static func headerNamesAreASCII(_ body: [UInt8], boundary: [UInt8]) -> Bool {
        var start = 0
        while let found = firstIndex(of: boundary, in: body, from: start) {
            start = found + 1
            var position = found + boundary.count
            guard position + 1 < body.count, body[position] == 0x0D, body[position + 1] == 0x0A else { continue }
            position += 2
            lines: while position < body.count {
                // A header name runs to ':'; an empty one ending in CR ends the block.
                var nameLength = 0
                while position < body.count {
                    let byte = body[position]
                    if byte >= 0x80 { return false }
                    if byte == 0x3A, nameLength > 0 { break }
                    if byte == 0x0D, nameLength == 0 { break lines }
                    if byte == 0x0D || byte == 0x3A { break lines }
                    nameLength += 1
                    position += 1
                }
                // The value runs to CR, which must be followed by LF (the parser stops otherwise).
                while position < body.count, body[position] != 0x0D { position += 1 }
                guard position + 1 < body.count, body[position + 1] == 0x0A else { break lines }
                position += 2
            }
        }
        return true
    }

    private static func firstIndex(of needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard let first = needle.first, haystack.count >= needle.count else { return nil }
        var index = start
        while index <= haystack.count - needle.count {
            if haystack[index] == first, haystack[index..<(index + needle.count)].elementsEqual(needle) { return index }
            index += 1
        }
        return nil
    }

    /// The file name the client gave in a part's `Content-Disposition`, for display only: the last
    /// path component, without control characters, at most 255 characters. It never becomes part
    /// of a stored path.
    package static func displayName(contentDisposition disposition: String) -> String {
        var raw = ""
        if let range = disposition.range(of: "filename=\"") {
            raw = String(disposition[range.upperBound...].prefix { $0 != "\"" })
        } else if let range = disposition.range(of: "filename=") {
            raw = String(disposition[range.upperBound...].prefix { $0 != ";" })
        }
        let lastComponent = raw.split(whereSeparator: { $0 == "/" || $0 == "\\" }).last.map(String.init) ?? ""
        let cleaned = String(String.UnicodeScalarView(lastComponent.unicodeScalars.filter { $0.value >= 0x20 && $0.value != 0x7F }))
            .trimmingCharacters(in: .whitespaces)
        let name = String(cleaned.prefix(255))
        return name.isEmpty || name.allSatisfy({ $0 == "." }) ? "upload" : name
    }
}
