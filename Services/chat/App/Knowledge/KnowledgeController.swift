import Foundation
import InternalAPI
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
    let knowledge: KnowledgeBase
    let verifier: AccessTokenVerifier

    var documents: any KnowledgeRepository { knowledge.documents }

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
        /// What the uploader attached (seed 001's `metadata` field), when anything.
        var metadata: JSONValue?

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
            metadata = document.metadata
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
        let upload = try await knowledge.receive(request)
        let document = try await knowledge.store(upload, tenantID: tenantID, uploader: try context.requireIdentity().userID, logger: context.logger)
        return JSONResponse(FileView(document), status: .created)
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
        else { throw KnowledgeBase.notFound }
        return JSONResponse(
            StatusView(id: id.uuidString.lowercased(), status: document.status, error: document.processingError, chunkCount: document.chunkCount)
        )
    }

    @Sendable func delete(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<Deleted> {
        let tenantID = try KnowledgeAccess.tenant(request, context)
        guard let id = Self.fileID(context), let key = try await documents.delete(id: id, tenantID: tenantID, logger: context.logger)
        else { throw KnowledgeBase.notFound }
        await knowledge.removeFiles([key], logger: context.logger)
        context.logger.notice("knowledge document deleted", metadata: ["tenant_id": "\(tenantID)", "document_id": "\(id)"])
        return JSONResponse(Deleted(status: "deleted", id: id.uuidString.lowercased()))
    }

    @Sendable func reprocess(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<Queued> {
        let tenantID = try KnowledgeAccess.tenant(request, context)
        guard let id = Self.fileID(context), let result = try await documents.requeue(id: id, tenantID: tenantID, logger: context.logger)
        else { throw KnowledgeBase.notFound }
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
}
