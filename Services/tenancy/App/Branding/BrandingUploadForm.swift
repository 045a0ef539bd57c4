import Foundation
import MultipartKit
import NIOCore
import ServiceCore

/// Seed 000's upload form (`multipart/form-data`: `asset_type`, `file`), read with multipart-kit.
struct BrandingUploadForm: Decodable {
    var assetType: String?
    var file: UploadedPart?

    /// A form part taken whole (headers and bytes); multipart-kit fills it through
    /// `MultipartPartConvertible`, never through `Decodable` (which only makes it usable as a field).
    struct UploadedPart: Decodable, MultipartPartConvertible {
        var part: MultipartPart

        var body: ByteBuffer { part.body }
        var multipart: MultipartPart? { part }

        init?(multipart: MultipartPart) {
            self.part = multipart
        }

        init(from decoder: any Decoder) throws {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "a file part is read from multipart only"))
        }
    }

    enum CodingKeys: String, CodingKey {
        case assetType = "asset_type"
        case file
    }

    /// The boundary of a `multipart/form-data` content type, or nil for any other type.
    static func boundary(ofContentType contentType: String?) -> String? {
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

    /// Parses `body`; a body that is not the multipart it claims to be is 400.
    static func parse(_ body: ByteBuffer, boundary: String) throws -> BrandingUploadForm {
        do {
            return try FormDataDecoder().decode(BrandingUploadForm.self, from: body, boundary: boundary)
        } catch {
            throw AppError.badRequest("Request body is not valid multipart/form-data", code: "MALFORMED_MULTIPART")
        }
    }

    /// The file name the client gave, for display only: the last path component, without control
    /// characters, at most 255 characters. It never becomes part of a stored path.
    static func displayName(of file: UploadedPart) -> String {
        let disposition = file.part.headers.first { $0.name.lowercased() == "content-disposition" }?.value ?? ""
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
