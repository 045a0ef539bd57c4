import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import ServiceCore

/// Seed 000's branding: uploads into the caller's own tenant (`/api/branding/*`, its admins and
/// owners) and the public file route the widget loads them from (`/api/public/branding/{id}`).
struct BrandingController: Sendable {
    let assets: any BrandingRepository
    let storage: any AssetStorage
    let verifier: AccessTokenVerifier
    let threadPool: NIOThreadPool

    /// Largest file accepted (413 beyond).
    static let maxFileBytes = 5 * 1_048_576
    /// The upload route's body limit: the file plus room for the multipart framing and the other field.
    static let maxBodyBytes = maxFileBytes + 65_536
    static let uploadPath = "/api/branding/upload"
    /// Assets a tenant may keep.
    static let maxAssetsPerTenant = 50
    /// Asset ids never change content, so caches may keep them for good.
    static let fileCacheControl = "public, max-age=31536000, immutable"

    struct AssetView: Codable, Sendable {
        var id: String
        var assetType: String
        /// The stored name (its id and the extension of its true format); the original is display-only.
        var filename: String
        var originalName: String
        var mimeType: String
        var fileSize: Int
        var width: Int
        var height: Int
        var url: String
        var createdAt: Date

        init(_ asset: BrandingAsset) {
            id = asset.id.uuidString.lowercased()
            assetType = asset.assetType.rawValue
            filename = "\(id).\(asset.format.fileExtension)"
            originalName = asset.originalName
            mimeType = asset.format.mimeType
            fileSize = asset.fileSize
            width = asset.width
            height = asset.height
            url = asset.url
            createdAt = asset.createdAt
        }
    }

    struct AssetList: Codable, Sendable {
        var assets: [AssetView]
        var total: Int
    }

    struct Deleted: Codable, Sendable {
        var status: String
        var id: String
    }

    struct ApplyRequest: Decodable {
        var applyLogo: Bool?
        var applyFavicon: Bool?
    }

    struct Applied: Codable, Sendable {
        var status: String
        var logoUrl: String?
        var faviconUrl: String?
    }

    func addRoutes(to group: RouterGroup<AppRequestContext>) {
        let managers = group.group().add(middleware: JWTAuthMiddleware(verifier: verifier))
        managers.post("upload", use: upload)
        managers.get("assets", use: list)
        managers.delete("assets/:assetID", use: delete)
        managers.put("apply", use: apply)
    }

    func addPublicRoutes(to group: RouterGroup<AppRequestContext>) {
        group.get(":assetID", use: serve)
    }

    /// A checked upload: what the form held, after every check passed.
    private struct Accepted: Sendable {
        var type: BrandingAssetType
        var image: InspectedImage
        var file: ByteBuffer
        var originalName: String
        var sha256: String
    }

    @Sendable func upload(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<AssetView> {
        let tenantID = try TenantAccess.ownManagedTenant(context)
        guard let boundary = BrandingUploadForm.boundary(ofContentType: request.headers[.contentType]) else {
            throw AppError(
                .unsupportedMediaType, code: "UNSUPPORTED_MEDIA_TYPE",
                detail: "Send multipart/form-data with the fields asset_type and file"
            )
        }
        var request = request
        let body: ByteBuffer
        do {
            body = try await request.collectBody(upTo: Self.maxBodyBytes)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw Self.fileTooLarge
        }
        // Parsing and reading image headers are CPU work on up to 5 MB: off the event loops.
        let accepted = try await threadPool.runIfActive { try Self.check(body, boundary: boundary) }
        let asset = BrandingAsset(
            id: UUID(), tenantID: tenantID, assetType: accepted.type, originalName: accepted.originalName, format: accepted.image.format,
            fileSize: accepted.file.readableBytes, width: accepted.image.width, height: accepted.image.height, sha256: accepted.sha256,
            createdAt: Date()
        )
        // The file first, then its row: a row never points at a file that is not (yet) there.
        try await storage.put(asset.id.uuidString.lowercased(), accepted.file)
        let stored: BrandingAsset
        do {
            stored = try await assets.insert(asset, limit: Self.maxAssetsPerTenant, logger: context.logger)
        } catch {
            try? await storage.delete(asset.id.uuidString.lowercased())
            throw error
        }
        context.logger.notice(
            "branding asset uploaded",
            metadata: ["tenant_id": "\(tenantID)", "asset_id": "\(stored.id)", "type": "\(stored.assetType.rawValue)", "bytes": "\(stored.fileSize)"]
        )
        return JSONResponse(AssetView(stored), status: .created)
    }

    static let fileTooLarge = AppError(.contentTooLarge, code: "PAYLOAD_TOO_LARGE", detail: "Branding files may be at most \(maxFileBytes) bytes")

    private static func check(_ body: ByteBuffer, boundary: String) throws -> Accepted {
        let form = try BrandingUploadForm.parse(body, boundary: boundary)
        var problems: [String: [String]] = [:]
        let type = form.assetType.flatMap(BrandingAssetType.init(rawValue:))
        if form.assetType == nil {
            problems["asset_type"] = ["is required"]
        } else if type == nil {
            problems["asset_type"] = ["must be one of \(BrandingAssetType.allCases.map(\.rawValue).joined(separator: ", "))"]
        }
        var image: InspectedImage?
        if let file = form.file {
            if file.body.readableBytes > maxFileBytes { throw fileTooLarge }
            do throws(ImageProblem) {
                image = try ImageInspector.inspect(Array(file.body.readableBytesView))
            } catch {
                problems["file"] = [error.description]
            }
        } else {
            problems["file"] = ["is required"]
        }
        guard problems.isEmpty, let type, let image, let file = form.file else { throw AppError.validation(problems) }
        let digest = SHA256.hash(data: Array(file.body.readableBytesView)).map { String(format: "%02x", $0) }.joined()
        return Accepted(type: type, image: image, file: file.body, originalName: BrandingUploadForm.displayName(of: file), sha256: digest)
    }

    @Sendable func list(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<AssetList> {
        let tenantID = try TenantAccess.ownManagedTenant(context)
        let found = try await assets.list(tenantID: tenantID, logger: context.logger)
        return JSONResponse(AssetList(assets: found.map(AssetView.init), total: found.count))
    }

    @Sendable func delete(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<Deleted> {
        let tenantID = try TenantAccess.ownManagedTenant(context)
        guard let id = Self.assetID(context), let deleted = try await assets.delete(id: id, tenantID: tenantID, logger: context.logger)
        else { throw Self.notFound }
        // The row is gone first; a file left by a failure here is the sweep's.
        do {
            try await storage.delete(deleted.id.uuidString.lowercased())
        } catch {
            context.logger.warning("branding file not removed; the sweep will", metadata: ["asset_id": "\(deleted.id)", "error": "\(error)"])
        }
        context.logger.notice("branding asset deleted", metadata: ["tenant_id": "\(tenantID)", "asset_id": "\(deleted.id)"])
        return JSONResponse(Deleted(status: "deleted", id: deleted.id.uuidString.lowercased()))
    }

    /// Puts the newest logo and/or favicon into the theme. Both are asked for when the body names
    /// neither; one named `true` that has no upload is 422; nothing to apply at all is 422.
    @Sendable func apply(_ request: Request, context: AppRequestContext) async throws -> JSONResponse<Applied> {
        let tenantID = try TenantAccess.ownManagedTenant(context)
        let input = try await request.decodeOptionalJSON(as: ApplyRequest.self, context: context) ?? ApplyRequest()
        let named = input.applyLogo != nil || input.applyFavicon != nil
        var types: [BrandingAssetType] = []
        if input.applyLogo ?? !named { types.append(.logo) }
        if input.applyFavicon ?? !named { types.append(.favicon) }
        guard !types.isEmpty else {
            throw AppError.validation(["apply_logo": ["nothing to apply: set apply_logo or apply_favicon to true"]])
        }
        var required: Set<BrandingAssetType> = []
        if input.applyLogo == true { required.insert(.logo) }
        if input.applyFavicon == true { required.insert(.favicon) }
        let applied = try await assets.apply(tenantID: tenantID, types: types, required: required, logger: context.logger)
        var problems: [String: [String]] = [:]
        if input.applyLogo == true, applied[.logo] == nil { problems["apply_logo"] = ["no logo has been uploaded"] }
        if input.applyFavicon == true, applied[.favicon] == nil { problems["apply_favicon"] = ["no favicon has been uploaded"] }
        if applied.isEmpty, problems.isEmpty { problems["apply_logo"] = ["no logo or favicon has been uploaded"] }
        guard problems.isEmpty else { throw AppError.validation(problems) }
        return JSONResponse(Applied(status: "applied", logoUrl: applied[.logo], faviconUrl: applied[.favicon]))
    }

    /// The file with its true type; `nosniff` and a CSP that runs nothing, whatever a browser guesses.
    @Sendable func serve(_ request: Request, context: AppRequestContext) async throws -> Response {
        guard let id = Self.assetID(context), let asset = try await assets.find(id: id, logger: context.logger) else { throw Self.notFound }
        var headers: HTTPFields = [:]
        headers[.xContentTypeOptions] = "nosniff"
        headers[.contentSecurityPolicy] = "default-src 'none'; sandbox"
        headers[.contentDisposition] = "inline; filename=\"\(asset.id.uuidString.lowercased()).\(asset.format.fileExtension)\""
        // The tag is the stored hash: a revalidation needs no read of the file.
        let tag = EntityTag(opaque: asset.sha256)
        if let notModified = CacheableResponse.notModified(tag, cacheControl: Self.fileCacheControl, request: request, extraHeaders: headers) {
            return notModified
        }
        guard let file = try await storage.get(asset.id.uuidString.lowercased()) else { throw Self.notFound }
        return CacheableResponse.make(
            file, contentType: asset.format.mimeType, cacheControl: Self.fileCacheControl, request: request, extraHeaders: headers, tag: tag
        )
    }

    private static func assetID(_ context: AppRequestContext) -> UUID? {
        context.parameters.get("assetID").flatMap(UUID.init(uuidString:))
    }

    static let notFound = AppError.notFound("Branding asset not found", code: "ASSET_NOT_FOUND")
}
