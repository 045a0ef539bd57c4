import Foundation
import InternalAPI
import Logging
import PostgresNIO
import ServiceCore

/// Seed 000's branding asset types.
enum BrandingAssetType: String, Sendable, CaseIterable {
    case logo, favicon
    case heroImage = "hero_image"
    case ogImage = "og_image"
    case background
}

/// One uploaded file's row; the file itself is in `AssetStorage` under `id`.
struct BrandingAsset: Sendable, Equatable {
    var id: UUID
    var tenantID: UUID
    var assetType: BrandingAssetType
    var originalName: String
    var format: ImageFormat
    var fileSize: Int
    var width: Int
    var height: Int
    var sha256: String
    var createdAt: Date

    /// Where the public serves it; also what a theme's `logo_url` / `favicon_url` holds.
    var url: String { ThemeFields.assetPathPrefix + id.uuidString.lowercased() }
}

protocol BrandingRepository: Sendable {
    /// Records an asset whose file is already stored, and marks the tenant's onboarding step
    /// `step_branding_uploaded`, in one transaction. Throws 409 past `limit` assets per tenant, and
    /// 404 when the tenant is not there (a super_admin's platform tenant has no row here).
    func insert(_ asset: BrandingAsset, limit: Int, logger: Logger) async throws -> BrandingAsset
    func list(tenantID: UUID, logger: Logger) async throws -> [BrandingAsset]
    /// Any tenant's asset, for the public file route.
    func find(id: UUID, logger: Logger) async throws -> BrandingAsset?
    /// Removes the row of `tenantID`'s asset `id` (nil when it has none), and takes its url out of
    /// the tenant's theme, in one transaction. The caller removes the file afterwards.
    func delete(id: UUID, tenantID: UUID, logger: Logger) async throws -> BrandingAsset?
    /// Points the theme's `logo_url` / `favicon_url` at the tenant's newest asset of each type asked
    /// for, and answers the urls found. Writes nothing when one of `required` has no asset.
    func apply(
        tenantID: UUID, types: [BrandingAssetType], required: Set<BrandingAssetType>, logger: Logger
    ) async throws -> [BrandingAssetType: String]
    /// Which of `ids` have a row (the sweep removes files that have none).
    func existing(ids: [UUID], logger: Logger) async throws -> Set<UUID>
}

struct PostgresBrandingRepository: BrandingRepository {
    let client: Database

    static let limitReached = AppError.conflict("This tenant already has the most branding assets it may keep; delete some first", code: "ASSET_LIMIT_REACHED")

    func insert(_ asset: BrandingAsset, limit: Int, logger: Logger) async throws -> BrandingAsset {
        enum Outcome: Sendable {
            case inserted(BrandingAsset)
            case limitReached
            case noTenant
        }
        let outcome: Outcome = try await client.transaction(logger: logger) { connection in
            // One upload at a time per tenant, so the limit holds under concurrent uploads.
            let tenant = try await connection.query(
                "SELECT id FROM tenants WHERE id = \(asset.tenantID) AND status <> 'provisioning' FOR UPDATE", logger: logger
            ).collect()
            guard !tenant.isEmpty else { return .noTenant }
            let counted = try await connection.query(
                "SELECT count(*)::int FROM branding_assets WHERE tenant_id = \(asset.tenantID)", logger: logger
            ).collect()
            guard try counted.first?.decode(Int.self) ?? 0 < limit else { return .limitReached }
            let rows = try await connection.query(
                """
                INSERT INTO branding_assets (id, tenant_id, asset_type, original_name, mime_type, file_size, width, height, sha256)
                VALUES (\(asset.id), \(asset.tenantID), \(asset.assetType.rawValue), \(asset.originalName), \(asset.format.mimeType),
                    \(asset.fileSize), \(asset.width), \(asset.height), \(asset.sha256))
                RETURNING \(unescaped: Self.columns)
                """,
                logger: logger
            ).collect()
            try await OnboardingSteps.mark(.brandingUploaded, tenantID: asset.tenantID, on: connection, logger: logger)
            guard let inserted = try rows.first.map(Self.asset) else { throw AppError.internalError("The asset insert returned no row") }
            return .inserted(inserted)
        }
        switch outcome {
        case .inserted(let asset): return asset
        case .limitReached: throw Self.limitReached
        case .noTenant: throw TenantAccess.notFound
        }
    }

    func list(tenantID: UUID, logger: Logger) async throws -> [BrandingAsset] {
        try await client.query(
            "SELECT \(unescaped: Self.columns) FROM branding_assets WHERE tenant_id = \(tenantID) ORDER BY created_at DESC, id",
            logger: logger
        ).rows.map(Self.asset)
    }

    func find(id: UUID, logger: Logger) async throws -> BrandingAsset? {
        try await client.query("SELECT \(unescaped: Self.columns) FROM branding_assets WHERE id = \(id)", logger: logger).rows.first.map(Self.asset)
    }

    func delete(id: UUID, tenantID: UUID, logger: Logger) async throws -> BrandingAsset? {
        try await client.transaction(logger: logger) { connection in
            let rows = try await connection.query(
                "DELETE FROM branding_assets WHERE id = \(id) AND tenant_id = \(tenantID) RETURNING \(unescaped: Self.columns)", logger: logger
            ).collect()
            guard let deleted = try rows.first.map(Self.asset) else { return nil }
            // A theme must not keep pointing at a file that is gone.
            try await connection.query(
                """
                UPDATE tenant_themes SET overrides = overrides
                    - (CASE WHEN overrides->>'logo_url' = \(deleted.url) THEN 'logo_url' ELSE '' END)
                    - (CASE WHEN overrides->>'favicon_url' = \(deleted.url) THEN 'favicon_url' ELSE '' END),
                    updated_at = now()
                WHERE tenant_id = \(tenantID)
                """,
                logger: logger
            )
            return deleted
        }
    }

    func apply(
        tenantID: UUID, types: [BrandingAssetType], required: Set<BrandingAssetType>, logger: Logger
    ) async throws -> [BrandingAssetType: String] {
        try await client.transaction(logger: logger) { connection in
            var applied: [BrandingAssetType: String] = [:]
            for type in types {
                let rows = try await connection.query(
                    """
                    SELECT \(unescaped: Self.columns) FROM branding_assets WHERE tenant_id = \(tenantID) AND asset_type = \(type.rawValue)
                    ORDER BY created_at DESC, id LIMIT 1
                    """,
                    logger: logger
                ).collect()
                if let asset = try rows.first.map(Self.asset) { applied[type] = asset.url }
            }
            guard required.isSubset(of: applied.keys) else { return applied }
            var set: [String: JSONValue] = [:]
            if let logo = applied[.logo] { set["logo_url"] = .string(logo) }
            if let favicon = applied[.favicon] { set["favicon_url"] = .string(favicon) }
            if !set.isEmpty {
                _ = try await PostgresThemeRepository.update(tenantID: tenantID, set: set, reset: [], on: connection, logger: logger)
            }
            return applied
        }
    }

    func existing(ids: [UUID], logger: Logger) async throws -> Set<UUID> {
        guard !ids.isEmpty else { return [] }
        return Set(try await client.query("SELECT id FROM branding_assets WHERE id = ANY(\(ids))", logger: logger).decode(UUID.self))
    }

    private static let columns = "id, tenant_id, asset_type, original_name, mime_type, file_size, width, height, sha256, created_at"

    private static func asset(_ row: PostgresRow) throws -> BrandingAsset {
        let (id, tenantID, type, name, mime, size, width, height, sha256, createdAt) = try row.decode(
            (UUID, UUID, String, String, String, Int, Int, Int, String, Date).self
        )
        guard let assetType = BrandingAssetType(rawValue: type), let format = ImageFormat.allCases.first(where: { $0.mimeType == mime }) else {
            throw AppError.internalError("Unreadable branding asset row \(id)")
        }
        return BrandingAsset(
            id: id, tenantID: tenantID, assetType: assetType, originalName: name, format: format, fileSize: size, width: width,
            height: height, sha256: sha256, createdAt: createdAt
        )
    }
}
