import Foundation
import Logging
import PostgresNIO
import ServiceCore

/// A file a widget user attached in a session (stored in `AssetStorage` under `storageKey`).
struct Attachment: Sendable {
    var id: UUID
    var tenantID: UUID
    var sessionID: String
    var name: String
    var mimeType: String
    var sizeBytes: Int
    var sha256: String
    var createdAt: Date

    var storageKey: String { Self.storageKey(for: id) }

    static func storageKey(for id: UUID) -> String { "att-\(id.uuidString.lowercased())" }
}

protocol AttachmentRepository: Sendable {
    /// Inserts `attachment` unless its session made `limit` uploads in the last minute (deleted
    /// ones count); false when it did.
    func insert(_ attachment: Attachment, limitPerMinute limit: Int, logger: Logger) async throws -> Bool
    /// A not-deleted attachment.
    func find(id: UUID, logger: Logger) async throws -> Attachment?
    /// Marks the session's attachment deleted; false when it has none such.
    func delete(id: UUID, sessionID: String, logger: Logger) async throws -> Bool
}

struct PostgresAttachmentRepository: AttachmentRepository {
    let client: Database

    func insert(_ attachment: Attachment, limitPerMinute limit: Int, logger: Logger) async throws -> Bool {
        try await client.transaction(logger: logger) { connection in
            // One upload of a session at a time decides against the count, so concurrent ones cannot all pass.
            try await connection.query("SELECT pg_advisory_xact_lock(hashtext(\(attachment.sessionID)))", logger: logger)
            let recent = try await connection.query(
                "SELECT count(*)::int FROM attachments WHERE session_id = \(attachment.sessionID) AND created_at > now() - INTERVAL '1 minute'",
                logger: logger
            ).collect().first?.decode(Int.self) ?? 0
            guard recent < limit else { return false }
            try await connection.query(
                """
                INSERT INTO attachments (id, tenant_id, session_id, name, mime_type, size_bytes, sha256)
                VALUES (\(attachment.id), \(attachment.tenantID), \(attachment.sessionID), \(attachment.name), \(attachment.mimeType),
                        \(attachment.sizeBytes), \(attachment.sha256))
                """,
                logger: logger
            )
            return true
        }
    }

    func find(id: UUID, logger: Logger) async throws -> Attachment? {
        let rows = try await client.query(
            """
            SELECT id, tenant_id, session_id, name, mime_type, size_bytes, sha256, created_at FROM attachments
            WHERE id = \(id) AND deleted_at IS NULL
            """,
            logger: logger
        )
        return try rows.decode((UUID, UUID, String, String, String, Int, String, Date).self).first.map {
            Attachment(id: $0.0, tenantID: $0.1, sessionID: $0.2, name: $0.3, mimeType: $0.4, sizeBytes: $0.5, sha256: $0.6, createdAt: $0.7)
        }
    }

    func delete(id: UUID, sessionID: String, logger: Logger) async throws -> Bool {
        try await client.query(
            """
            UPDATE attachments SET deleted_at = now()
            WHERE id = \(id) AND session_id = \(sessionID) AND deleted_at IS NULL RETURNING id
            """,
            logger: logger
        ).count == 1
    }
}
