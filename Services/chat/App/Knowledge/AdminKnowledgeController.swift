import Foundation
import HTTPTypes
import Hummingbird
import Logging
import ServiceCore

/// Seed 001's knowledge administration (`/api/admin/knowledge/*`): another door to the knowledge
/// base's operations (`KnowledgeBase`, the same as seed 000's `/api/knowledge-base/*`), working on
/// a tenant named in the form or body (`tenant_id`) and on several documents at once. Access as
/// `KnowledgeAccess` says: a super_admin any tenant, a tenant's admins and owners their own.
/// Batches are all or nothing: one id that is not the tenant's document is 404 and nothing changes.
struct AdminKnowledgeController: Sendable {
    let knowledge: KnowledgeBase
    let verifier: AccessTokenVerifier

    static let uploadPath = "/api/admin/knowledge/upload"
    /// Most documents one request names.
    static let maxDocumentIDs = 100

    /// The body of `ingest` and `DELETE documents`.
    struct DocumentsRequest: Decodable, Sendable {
        var tenantId: String?
        var documentIds: [String]
    }

    struct Ingested: Codable, Sendable {
        var status: String
        var tenantId: String
        /// Queued again (they were completed or failed).
        var queued: [String]
        /// Left as they were: already pending or being processed.
        var alreadyQueued: [String]
    }

    struct Deleted: Codable, Sendable {
        var status: String
        var tenantId: String
        var deleted: [String]
    }

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        let managers = group.group().add(middleware: JWTAuthMiddleware(verifier: verifier))
        managers.post("upload", use: upload)
        managers.post("ingest", use: ingest)
        managers.get("stats", use: stats)
        managers.delete("documents", use: delete)
    }

    @Sendable func upload(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<KnowledgeController.FileView> {
        let identity = try KnowledgeAccess.manager(context)
        let upload = try await knowledge.receive(request)
        let tenantID = try KnowledgeAccess.tenant(named: upload.tenantField, identity: identity)
        let document = try await knowledge.store(upload, tenantID: tenantID, uploader: identity.userID, logger: context.logger)
        return JSONResponse(KnowledgeController.FileView(document), status: .created)
    }

    @Sendable func ingest(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<Ingested> {
        let (tenantID, ids) = try await documents(request, context)
        guard let result = try await knowledge.documents.requeue(ids: ids, tenantID: tenantID, logger: context.logger) else {
            throw KnowledgeBase.notFound
        }
        context.logger.notice(
            "knowledge documents queued again", metadata: ["tenant_id": "\(tenantID)", "count": "\(result.requeued.count)"]
        )
        return JSONResponse(
            Ingested(status: "queued", tenantId: Self.text(tenantID), queued: result.requeued.map(Self.text), alreadyQueued: result.inProgress.map(Self.text)),
            status: .accepted
        )
    }

    @Sendable func stats(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<KnowledgeStats> {
        let tenantID = try KnowledgeAccess.tenant(request, context)
        return JSONResponse(try await knowledge.documents.stats(tenantID: tenantID, logger: context.logger))
    }

    @Sendable func delete(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<Deleted> {
        let (tenantID, ids) = try await documents(request, context)
        guard let keys = try await knowledge.documents.delete(ids: ids, tenantID: tenantID, logger: context.logger) else {
            throw KnowledgeBase.notFound
        }
        await knowledge.removeFiles(keys, logger: context.logger)
        context.logger.notice("knowledge documents deleted", metadata: ["tenant_id": "\(tenantID)", "count": "\(ids.count)"])
        return JSONResponse(Deleted(status: "deleted", tenantId: Self.text(tenantID), deleted: ids.map(Self.text)))
    }

    /// The tenant and the documents a body names: 1 to `maxDocumentIDs` UUIDs (repeats count once).
    private func documents(_ request: Request, _ context: AppRequestContext) async throws -> (UUID, [UUID]) {
        let identity = try KnowledgeAccess.manager(context)
        let body = try await request.decodeJSON(as: DocumentsRequest.self, context: context)
        guard (1...Self.maxDocumentIDs).contains(body.documentIds.count) else {
            throw AppError.validation(["document_ids": ["must name 1 to \(Self.maxDocumentIDs) documents"]])
        }
        var ids: [UUID] = []
        for raw in body.documentIds {
            guard let id = UUID(uuidString: raw) else { throw AppError.validation(["document_ids": ["must be UUIDs"]]) }
            if !ids.contains(id) { ids.append(id) }
        }
        return (try KnowledgeAccess.tenant(named: body.tenantId, identity: identity), ids)
    }

    private static func text(_ id: UUID) -> String { id.uuidString.lowercased() }
}
