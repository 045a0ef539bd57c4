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
        MultipartFormChecks.boundary(ofContentType: contentType)
    }

    /// Parses `body`; a body that is not the multipart it claims to be is 400.
    static func parse(_ body: ByteBuffer, boundary: String) throws -> BrandingUploadForm {
        guard MultipartFormChecks.headerNamesAreASCII(Array(body.readableBytesView), boundary: Array("--\(boundary)".utf8)) else {
            throw malformed
        }
        do {
            return try FormDataDecoder().decode(BrandingUploadForm.self, from: body, boundary: boundary)
        } catch {
            throw malformed
        }
    }

    static let malformed = MultipartFormChecks.malformed

    /// The file name the client gave, for display only: the last path component, without control
    /// characters, at most 255 characters. It never becomes part of a stored path.
    static func displayName(of file: UploadedPart) -> String {
        MultipartFormChecks.displayName(contentDisposition: file.part.headers.first { $0.name.lowercased() == "content-disposition" }?.value ?? "")
    }
}
