import Foundation
import HTTPTypes
import Hummingbird
import InternalAPI
import Logging
import NIOCore
import NIOPosix
import ServiceCore

/// Seed 000's attachments API: a widget user uploads files into their session (`X-Session-ID`,
/// at most `uploadsPerMinute` a minute per session), anyone holding an attachment's id downloads
/// it (the unguessable UUID is the access token), images have a preview, and the session deletes
/// its own. The type is decided by the file's bytes, never by its name or the client's header.
struct AttachmentsController: Sendable {
    let attachments: any AttachmentRepository
    let sessions: any SessionRepository
    let storage: any AssetStorage
    let threadPool: NIOThreadPool
    /// The tenant's widget attachment settings (tenancy's theme, reused a few seconds).
    let settings: InternalLookupCache<WidgetAttachmentSettings>

    static let maxFileBytes = 10 * 1_048_576
    static let maxBodyBytes = maxFileBytes + FileUploadForm.framingAllowance
    static let uploadPath = "/attachments"
    static let uploadsPerMinute = 10

    /// Seed 000's `AttachmentResponse`.
    struct AttachmentView: Codable, Sendable {
        var id: String
        var name: String
        var mimeType: String
        var size: Int
        var uploadUrl: String
        var previewUrl: String?
    }

    struct Deleted: Codable, Sendable {
        var status: String
        var id: String
    }

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        group.post(use: upload)
        group.get(":attachmentID", use: download)
        group.get(":attachmentID/preview", use: preview)
        group.delete(":attachmentID", use: delete)
    }

    @Sendable func upload(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<AttachmentView> {
        let session = try await activeSession(request, context)
        // The tenant's widget settings: attachments switched on, and each at most its size (within chat's own limit).
        let settings = try await attachmentSettings(tenantID: session.tenantID, logger: context.logger)
        guard settings.attachmentsEnabled else {
            throw AppError(.forbidden, code: "ATTACHMENTS_DISABLED", detail: "This widget does not take attachments")
        }
        let maxBytes = min(settings.attachmentsMaxSize, Self.maxFileBytes)
        let tooLarge = Self.fileTooLarge(maxBytes)
        let boundary = try FileUploadForm.boundary(of: request)
        let body = try await FileUploadForm.collect(request, limit: maxBytes + FileUploadForm.framingAllowance, tooLarge: tooLarge)
        let accepted = try await threadPool.runIfActive { try Self.check(body, boundary: boundary, maxBytes: maxBytes, tooLarge: tooLarge) }
        let attachment = Attachment(
            id: UUID(), tenantID: session.tenantID, sessionID: session.id, name: accepted.name, mimeType: accepted.format.mimeType,
            sizeBytes: accepted.file.readableBytes, sha256: accepted.sha256, createdAt: Date()
        )
        try await storage.put(attachment.storageKey, accepted.file)
        let inserted: Bool
        do {
            inserted = try await attachments.insert(attachment, limitPerMinute: Self.uploadsPerMinute, logger: context.logger)
        } catch {
            try? await storage.delete(attachment.storageKey)
            throw error
        }
        guard inserted else {
            try? await storage.delete(attachment.storageKey)
            var headers = HTTPFields()
            headers[.retryAfter] = "60"
            throw AppError(
                .tooManyRequests, code: "ATTACHMENT_RATE_LIMITED", detail: "At most \(Self.uploadsPerMinute) attachments a minute per session",
                headers: headers
            )
        }
        return JSONResponse(Self.view(attachment, format: accepted.format), status: .created)
    }

    static func view(_ attachment: Attachment, format: AttachmentFormat) -> AttachmentView {
        let id = attachment.id.uuidString.lowercased()
        return AttachmentView(
            id: id, name: attachment.name, mimeType: attachment.mimeType, size: attachment.sizeBytes, uploadUrl: "/attachments/\(id)",
            previewUrl: format.isImage ? "/attachments/\(id)/preview" : nil
        )
    }

    static func fileTooLarge(_ maxBytes: Int) -> AppError {
        AppError(.contentTooLarge, code: "PAYLOAD_TOO_LARGE", detail: "Attachments may be at most \(maxBytes) bytes")
    }

    /// tenancy's answer, or while it cannot be asked the last one known (503 with none); a tenant
    /// tenancy does not know takes no attachments.
    private func attachmentSettings(tenantID: UUID, logger: Logger) async throws -> WidgetAttachmentSettings {
        let path = "/internal/tenants/\(tenantID.uuidString.lowercased())/theme"
        let found: WidgetAttachmentSettings?
        do {
            found = try await settings.value(path: path, logger: logger)
        } catch {
            guard let known = settings.lastKnown(path: path) else { throw error }
            logger.warning("tenancy's widget settings unavailable; using the last known", metadata: ["tenant_id": "\(tenantID)"])
            found = known
        }
        return found ?? WidgetAttachmentSettings(attachmentsEnabled: false, attachmentsMaxCount: 0, attachmentsMaxSize: 0)
    }

    private struct Accepted: Sendable {
        var format: AttachmentFormat
        var file: ByteBuffer
        var name: String
        var sha256: String
    }

    private static func check(_ body: ByteBuffer, boundary: String, maxBytes: Int, tooLarge: AppError) throws -> Accepted {
        let file = try FileUploadForm.file(in: body, boundary: boundary, maxBytes: maxBytes, tooLarge: tooLarge)
        guard let format = AttachmentFormat.detect(Array(file.body.readableBytesView)) else {
            throw AppError.validation(["file": ["must be a PNG, JPEG, GIF or WebP image, a PDF or UTF-8 text"]])
        }
        return Accepted(format: format, file: file.body, name: file.displayName, sha256: file.sha256)
    }

    @Sendable func download(_ request: Request, context: AppRequestContext) async throws -> Response {
        try await serve(context, preview: false)
    }

    /// The image itself, shown inline (no thumbnail is made); other files have no preview.
    @Sendable func preview(_ request: Request, context: AppRequestContext) async throws -> Response {
        try await serve(context, preview: true)
    }

    private func serve(_ context: AppRequestContext, preview: Bool) async throws -> Response {
        guard let id = Self.attachmentID(context), let attachment = try await attachments.find(id: id, logger: context.logger) else {
            throw Self.notFound
        }
        let isImage = attachment.mimeType.hasPrefix("image/")
        if preview, !isImage { throw AppError.notFound("This attachment has no preview", code: "NO_PREVIEW") }
        guard let file = try await storage.get(attachment.storageKey) else { throw Self.notFound }
        var headers: HTTPFields = [:]
        headers[.contentType] = attachment.mimeType
        headers[.xContentTypeOptions] = "nosniff"
        headers[.contentSecurityPolicy] = "default-src 'none'; sandbox"
        headers[.cacheControl] = "private, max-age=3600"
        // Images show inline; anything else downloads. The client's name is quoted without quotes or controls.
        let safeName = attachment.name.unicodeScalars.filter { $0.isASCII && $0.value >= 0x20 && $0 != "\"" && $0 != "\\" }
        headers[.contentDisposition] = "\(isImage ? "inline" : "attachment"); filename=\"\(String(String.UnicodeScalarView(safeName)))\""
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: file))
    }

    @Sendable func delete(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<Deleted> {
        let session = try await activeSession(request, context)
        guard let id = Self.attachmentID(context), try await attachments.delete(id: id, sessionID: session.id, logger: context.logger) else {
            throw Self.notFound
        }
        do {
            try await storage.delete(Attachment.storageKey(for: id))
        } catch {
            context.logger.warning("attachment file not removed", metadata: ["attachment_id": "\(id)", "error": "\(error)"])
        }
        return JSONResponse(Deleted(status: "deleted", id: id.uuidString.lowercased()))
    }

    private func activeSession(_ request: Request, _ context: AppRequestContext) async throws -> WidgetSession {
        guard let id = request.headers[.xSessionID], PostgresSessionRepository.isWellFormed(id),
            let session = try await sessions.active(id: id, logger: context.logger)
        else {
            throw AppError.rejectedCredentials("A valid X-Session-ID is required", code: "INVALID_SESSION")
        }
        return session
    }

    private static func attachmentID(_ context: AppRequestContext) -> UUID? {
        context.parameters.get("attachmentID").flatMap(UUID.init(uuidString:))
    }

    static let notFound = AppError.notFound("Attachment not found", code: "ATTACHMENT_NOT_FOUND")
}
