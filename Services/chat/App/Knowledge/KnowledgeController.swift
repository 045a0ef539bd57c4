import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import ServiceCore

/// Seed 000's knowledge base (`/api/knowledge-base/*`): a tenant's admins and owners upload
/// documents (TXT, MD, CSV, HTML, DOCX, PDF, up to 50 MB), list them, follow their processing,
/// delete and reprocess them. Uploads are stored and queued; `KnowledgeIngestionWorker` reads them.
struct KnowledgeController: Sendable {
    let documents: any KnowledgeRepository
    let storage: any AssetStorage
    let verifier: AccessTokenVerifier
    let threadPool: NIOThreadPool

    /// Largest file accepted (413 beyond).
    static let maxFileBytes = 50 * 1_048_576
    /// The upload route's body limit: the file plus room for the multipart framing.
    static let maxBodyBytes = maxFileBytes + 65_536
    static let uploadPath = "/api/knowledge-base/upload"

    /// Seed 000's `KnowledgeBaseFileResponse`.
    struct FileView: Codable, Sendable {
        var id: String
        /// The stored name (its id and the extension of its format); the original is display-only.
        var filename: String
        var originalName: String
        var mimeType: String
        var fileSize: Int
        var processingStatus: KnowledgeDocument.Status
        var processingError: String?
        var chunkCount: Int
        var createdAt: Date

        init(_ document: KnowledgeDocument) {
            id = document.id.uuidString.lowercased()
            let format = DocumentFormat.named(document.filename)
            filename = "\(id).\(format?.rawValue ?? "bin")"
            originalName = document.filename
            mimeType = document.contentType
            fileSize = document.sizeBytes
            processingStatus = document.status
            processingError = document.processingError
            chunkCount = document.chunkCount
            createdAt = document.createdAt
        }
    }

    struct FileList: Codable, Sendable {
        var files: [FileView]
        var total: Int
    }

    struct StatusView: Codable, Sendable {
        var id: String
        var status: KnowledgeDocument.Status
        var error: String?
        var chunkCount: Int
    }

    struct Deleted: Codable, Sendable {
        var status: String
        var id: String
    }

    struct Queued: Codable, Sendable {
        var status: String
        var id: String
        var message: String
    }

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        let managers = group.group().add(middleware: JWTAuthMiddleware(verifier: verifier))
        managers.post("upload", use: upload)
        managers.get("files", use: list)
        managers.get("files/:fileID/status", use: status)
        managers.delete("files/:fileID", use: delete)
        managers.post("files/:fileID/reprocess", use: reprocess)
    }

    @Sendable func upload(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<FileView> {
        let tenantID = try KnowledgeAccess.tenant(request, context)
        let boundary = try FileUploadForm.boundary(of: request)
        let body = try await FileUploadForm.collect(request, limit: Self.maxBodyBytes, tooLarge: Self.fileTooLarge)
        // Parsing and checking up to 50 MB is CPU work: off the event loops.
        let accepted = try await threadPool.runIfActive { try Self.check(body, boundary: boundary) }
        let id = UUID()
        let document = KnowledgeDocument(
            id: id, tenantID: tenantID, filename: accepted.name, contentType: accepted.format.mimeType, sizeBytes: accepted.file.readableBytes,
            sha256: accepted.sha256, storageKey: KnowledgeDocument.storageKey(for: id), status: .pending, chunkCount: 0, processingError: nil,
            createdAt: Date()
        )
        // The file first, then its row (which queues it): a job never points at a file not yet there.
        try await storage.put(document.storageKey, accepted.file)
        do {
            let uploader = try context.requireIdentity().userID
            try await documents.insert(document, uploadedBy: uploader, logger: context.logger)
        } catch {
            try? await storage.delete(document.storageKey)
            throw error
        }
        context.logger.notice(
            "knowledge document uploaded",
            metadata: ["tenant_id": "\(tenantID)", "document_id": "\(id)", "format": "\(accepted.format.rawValue)", "bytes": "\(document.sizeBytes)"]
        )
        let stored = try await documents.find(id: id, tenantID: tenantID, logger: context.logger) ?? document
        return JSONResponse(FileView(stored), status: .created)
    }

    static let fileTooLarge = AppError(.contentTooLarge, code: "PAYLOAD_TOO_LARGE", detail: "Knowledge-base files may be at most \(maxFileBytes) bytes")

    private struct Accepted: Sendable {
        var format: DocumentFormat
        var file: ByteBuffer
        var name: String
        var sha256: String
    }

    private static func check(_ body: ByteBuffer, boundary: String) throws -> Accepted {
        let file = try FileUploadForm.file(in: body, boundary: boundary, maxBytes: maxFileBytes, tooLarge: fileTooLarge)
        let name = file.displayName
        let supported = DocumentFormat.allCases.map { $0.rawValue.uppercased() }.joined(separator: ", ")
        guard let format = DocumentFormat.named(name) else {
            throw AppError.validation(["file": ["must be one of \(supported) (by its file name's extension)"]])
        }
        if let mismatch = format.mismatch(file.body.readableBytesView) { throw AppError.validation(["file": [mismatch]]) }
        return Accepted(format: format, file: file.body, name: name, sha256: file.sha256)
    }

    @Sendable func list(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<FileList> {
        let tenantID = try KnowledgeAccess.tenant(request, context)
        var problems: [String: [String]] = [:]
        let paging = Paging(request, problems: &problems)
        guard problems.isEmpty else { throw AppError.validation(problems) }
        let found = try await documents.list(tenantID: tenantID, paging: paging, logger: context.logger)
        return JSONResponse(FileList(files: found.documents.map(FileView.init), total: found.total))
    }

    @Sendable func status(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<StatusView> {
        let tenantID = try KnowledgeAccess.tenant(request, context)
        guard let id = Self.fileID(context), let document = try await documents.find(id: id, tenantID: tenantID, logger: context.logger)
        else { throw Self.notFound }
        return JSONResponse(
            StatusView(id: id.uuidString.lowercased(), status: document.status, error: document.processingError, chunkCount: document.chunkCount)
        )
    }

    @Sendable func delete(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<Deleted> {
        let tenantID = try KnowledgeAccess.tenant(request, context)
        guard let id = Self.fileID(context), let key = try await documents.delete(id: id, tenantID: tenantID, logger: context.logger)
        else { throw Self.notFound }
        do {
            try await storage.delete(key)
        } catch {
            context.logger.warning("knowledge file not removed", metadata: ["document_id": "\(id)", "error": "\(error)"])
        }
        context.logger.notice("knowledge document deleted", metadata: ["tenant_id": "\(tenantID)", "document_id": "\(id)"])
        return JSONResponse(Deleted(status: "deleted", id: id.uuidString.lowercased()))
    }

    @Sendable func reprocess(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<Queued> {
        let tenantID = try KnowledgeAccess.tenant(request, context)
        guard let id = Self.fileID(context), let result = try await documents.requeue(id: id, tenantID: tenantID, logger: context.logger)
        else { throw Self.notFound }
        guard result.requeued else {
            throw AppError.conflict("The document is already queued or being processed", code: "DOCUMENT_IN_PROGRESS")
        }
        return JSONResponse(
            Queued(status: "queued", id: id.uuidString.lowercased(), message: "The document will be processed again"), status: .accepted
        )
    }

    private static func fileID(_ context: AppRequestContext) -> UUID? {
        context.parameters.get("fileID").flatMap(UUID.init(uuidString:))
    }

    static let notFound = AppError.notFound("Knowledge-base file not found", code: "FILE_NOT_FOUND")
}
