import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import MultipartKit
import NIOCore
import ServiceCore

/// A `multipart/form-data` upload with one `file` part (the knowledge base's and attachments'),
/// read with multipart-kit after `MultipartFormChecks` kept it from trapping the parser.
struct FileUploadForm: Decodable {
    /// Room a body needs beyond its file: the multipart framing and the form's other fields.
    static let framingAllowance = 65_536

    var file: UploadedPart?
    /// Seed 001's admin upload names its tenant and metadata in the form; other uploads ignore them.
    var tenantID: String?
    var metadata: String?

    enum CodingKeys: String, CodingKey {
        case file
        case tenantID = "tenant_id"
        case metadata
    }

    /// A form part taken whole (headers and bytes); multipart-kit fills it through
    /// `MultipartPartConvertible`, never through `Decodable`.
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

        /// The SHA-256 of the file, in hex.
        var sha256: String {
            SHA256.hash(data: Array(part.body.readableBytesView)).map { String(format: "%02x", $0) }.joined()
        }

        /// The client's file name, for display only.
        var displayName: String {
            MultipartFormChecks.displayName(contentDisposition: part.headers.first { $0.name.lowercased() == "content-disposition" }?.value ?? "")
        }
    }

    /// Parses `body`; a body that is not the multipart it claims to be is 400.
    static func parse(_ body: ByteBuffer, boundary: String) throws -> FileUploadForm {
        guard MultipartFormChecks.headerNamesAreASCII(Array(body.readableBytesView), boundary: Array("--\(boundary)".utf8)) else {
            throw MultipartFormChecks.malformed
        }
        do {
            return try FormDataDecoder().decode(FileUploadForm.self, from: body, boundary: boundary)
        } catch {
            throw MultipartFormChecks.malformed
        }
    }

    /// The `file` part of `body`: present, not empty, at most `maxBytes` (beyond: `tooLarge`).
    static func file(in body: ByteBuffer, boundary: String, maxBytes: Int, tooLarge: AppError) throws -> UploadedPart {
        try checked(in: body, boundary: boundary, maxBytes: maxBytes, tooLarge: tooLarge).file
    }

    /// The form of `body` with its `file` part checked as `file(in:…)` does.
    static func checked(in body: ByteBuffer, boundary: String, maxBytes: Int, tooLarge: AppError) throws -> (file: UploadedPart, form: FileUploadForm) {
        let form = try parse(body, boundary: boundary)
        guard let file = form.file else { throw AppError.validation(["file": ["is required"]]) }
        if file.body.readableBytes > maxBytes { throw tooLarge }
        guard file.body.readableBytes > 0 else { throw AppError.validation(["file": ["is empty"]]) }
        return (file, form)
    }

    /// The boundary of the request's content type, or 415 naming what to send.
    static func boundary(of request: Request) throws -> String {
        guard let boundary = MultipartFormChecks.boundary(ofContentType: request.headers[.contentType]) else {
            throw AppError(.unsupportedMediaType, code: "UNSUPPORTED_MEDIA_TYPE", detail: "Send multipart/form-data with the field file")
        }
        return boundary
    }

    /// The whole body up to `limit` bytes; beyond it, `tooLarge`.
    static func collect(_ request: Request, limit: Int, tooLarge: AppError) async throws -> ByteBuffer {
        var request = request
        do {
            return try await request.collectBody(upTo: limit)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw tooLarge
        }
    }
}
