import Foundation
import Hummingbird
import InternalAPI
import Logging
import NIOCore
import NIOPosix
import ServiceCore

/// The knowledge base's operations, whichever door a request comes through: seed 000's
/// `/api/knowledge-base/*` (`KnowledgeController`) and seed 001's `/api/admin/knowledge/*`
/// (`AdminKnowledgeController`) differ only in how they name the tenant and the documents.
struct KnowledgeBase: Sendable {
    let documents: any KnowledgeRepository
    let storage: any AssetStorage
    let threadPool: NIOThreadPool

    /// Largest file accepted (413 beyond).
    static let maxFileBytes = 50 * 1_048_576
    /// An upload route's body limit: the file plus room for the multipart framing and the form's fields.
    static let maxBodyBytes = maxFileBytes + FileUploadForm.framingAllowance
    /// Largest `metadata` form field (a JSON object kept with the document).
    static let maxMetadataBytes = 16_384

    static let fileTooLarge = AppError(.contentTooLarge, code: "PAYLOAD_TOO_LARGE", detail: "Knowledge-base files may be at most \(maxFileBytes) bytes")
    static let notFound = AppError.notFound("Knowledge-base file not found", code: "FILE_NOT_FOUND")

    /// An upload read and checked: the file and its format, and the form's other fields.
    struct Upload: Sendable {
        var format: DocumentFormat
        var file: ByteBuffer
        var name: String
        var sha256: String
        /// The form's `tenant_id`, as sent (seed 001's upload names the tenant there).
        var tenantField: String?
        var metadata: JSONValue?
    }

    /// Reads and checks a `multipart/form-data` upload; nothing is stored yet.
    func receive(_ request: Request) async throws -> Upload {
        let boundary = try FileUploadForm.boundary(of: request)
        let body = try await FileUploadForm.collect(request, limit: Self.maxBodyBytes, tooLarge: Self.fileTooLarge)
        // Parsing and checking up to 50 MB is CPU work: off the event loops.
        return try await threadPool.runIfActive { try Self.check(body, boundary: boundary) }
    }

    private static func check(_ body: ByteBuffer, boundary: String) throws -> Upload {
        let (file, form) = try FileUploadForm.checked(in: body, boundary: boundary, maxBytes: maxFileBytes, tooLarge: fileTooLarge)
        let name = file.displayName
        let supported = DocumentFormat.allCases.map { $0.rawValue.uppercased() }.joined(separator: ", ")
        guard let format = DocumentFormat.named(name) else {
            throw AppError.validation(["file": ["must be one of \(supported) (by its file name's extension)"]])
        }
        if let mismatch = format.mismatch(file.body.readableBytesView) { throw AppError.validation(["file": [mismatch]]) }
        return Upload(
            format: format, file: file.body, name: name, sha256: file.sha256, tenantField: form.tenantID, metadata: try metadata(form.metadata)
        )
    }

    /// The `metadata` field: a JSON object of at most `maxMetadataBytes`, or absent.
    private static func metadata(_ raw: String?) throws -> JSONValue? {
        guard let raw, !raw.isEmpty else { return nil }
        guard raw.utf8.count <= maxMetadataBytes else { throw AppError.validation(["metadata": ["must be at most \(maxMetadataBytes) bytes"]]) }
        guard let value = try? JSONCoding.decoder.decode(JSONValue.self, from: Data(raw.utf8)), case .object = value else {
            throw AppError.validation(["metadata": ["must be a JSON object"]])
        }
        return value
    }

    /// Stores the file, then its row (which queues it): a job never points at a file not yet there.
    func store(_ upload: Upload, tenantID: UUID, uploader: String, logger: Logger) async throws -> KnowledgeDocument {
        let id = UUID()
        let document = KnowledgeDocument(
            id: id, tenantID: tenantID, filename: upload.name, contentType: upload.format.mimeType, sizeBytes: upload.file.readableBytes,
            sha256: upload.sha256, storageKey: KnowledgeDocument.storageKey(for: id), status: .pending, chunkCount: 0, processingError: nil,
            createdAt: Date(), metadata: upload.metadata
        )
        try await storage.put(document.storageKey, upload.file)
        do {
            try await documents.insert(document, uploadedBy: uploader, logger: logger)
        } catch {
            // A crash here instead leaves the file to the orphan sweep.
            try? await storage.delete(document.storageKey)
            throw error
        }
        logger.notice(
            "knowledge document uploaded",
            metadata: ["tenant_id": "\(tenantID)", "document_id": "\(id)", "format": "\(upload.format.rawValue)", "bytes": "\(document.sizeBytes)"]
        )
        return try await documents.find(id: id, tenantID: tenantID, logger: logger) ?? document
    }

    /// Removes the files of deleted documents (their rows are gone first); a file left by a
    /// failure here is the orphan sweep's.
    func removeFiles(_ keys: [String], logger: Logger) async {
        for key in keys {
            do {
                try await storage.delete(key)
            } catch {
                logger.warning("knowledge file not removed; the sweep will", metadata: ["storage_key": "\(key)", "error": "\(error)"])
            }
        }
    }
}
