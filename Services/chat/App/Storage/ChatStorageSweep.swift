import Foundation
import Logging
import PostgresNIO
import ServiceCore
import ServiceLifecycle

/// Keeps chat's storage directory and its rows in step, for what a crash or a failed removal left
/// behind. Files are written before their row and removed after it, so the usual leftovers are
/// files no row names (a crash between the write and the insert, a removal that failed, a session
/// whose attachments went with it); those are removed, with temporaries of interrupted writes.
/// The rarer ones are rows whose file vanished: such a knowledge-base document fails (it can
/// no longer be processed again) and loses its chunks, like any failed document; such an
/// attachment is marked deleted. Only what is older than `grace` is touched: an upload may still
/// be between its file and its row. Names the sweep does not know are left alone.
struct ChatStorageSweep: Service {
    struct Outcome: Sendable, Equatable {
        var filesRemoved = 0
        var documentsFailed = 0
        var attachmentsClosed = 0
    }

    static let missingFileReason = "the stored file is missing; upload the document again"

    let storage: any AssetStorage
    let database: Database
    let grace: Duration
    let interval: Duration
    let logger: Logger

    func run() async throws {
        await repeatUntilShutdown(every: interval) { _ = await sweepOnce() }
    }

    /// One pass.
    func sweepOnce(now: Date = Date()) async -> Outcome {
        do {
            let cutoff = now.addingTimeInterval(-Double(grace.components.seconds))
            let files = try await storage.list()
            var outcome = Outcome()
            outcome.filesRemoved = try await removeOrphanFiles(files.filter { $0.modified < cutoff }.map(\.key))
            // An empty directory is more likely a replica pointed at the wrong one than every file lost:
            // the rows are left alone then.
            if files.isEmpty {
                logger.warning("chat's storage directory is empty; rows without files are not closed")
            } else {
                (outcome.documentsFailed, outcome.attachmentsClosed) = try await closeRowsWithoutFiles(present: files.map(\.key), cutoff: cutoff)
            }
            if outcome != Outcome() {
                logger.notice(
                    "chat storage swept",
                    metadata: [
                        "files_removed": "\(outcome.filesRemoved)", "documents_failed": "\(outcome.documentsFailed)",
                        "attachments_closed": "\(outcome.attachmentsClosed)",
                    ]
                )
            }
            return outcome
        } catch {
            logger.warning("could not sweep chat's storage", metadata: ["error": "\(error)"])
            return Outcome()
        }
    }

    /// Removes the old files no row names: knowledge-base files without a document, attachment
    /// files without a live attachment, and temporaries.
    private func removeOrphanFiles(_ old: [String]) async throws -> Int {
        let documents = old.compactMap { Self.id(in: $0, prefix: "kb-") }
        let attachments = old.compactMap { Self.id(in: $0, prefix: "att-") }
        var kept = Set<UUID>()
        if !documents.isEmpty {
            let rows = try await database.query("SELECT id FROM knowledge_documents WHERE id = ANY(\(documents))", logger: logger)
            kept.formUnion(try rows.decode(UUID.self))
        }
        if !attachments.isEmpty {
            let rows = try await database.query("SELECT id FROM attachments WHERE id = ANY(\(attachments)) AND deleted_at IS NULL", logger: logger)
            kept.formUnion(try rows.decode(UUID.self))
        }
        let orphans = old.filter { key in
            if key.hasPrefix(FileSystemAssetStorage.temporaryPrefix) { return true }
            guard let id = Self.id(in: key, prefix: "kb-") ?? Self.id(in: key, prefix: "att-") else { return false }
            return !kept.contains(id)
        }
        for key in orphans { try await storage.delete(key) }
        return orphans.count
    }

    /// Fails the old documents and closes the old attachments whose file is not among `present`.
    private func closeRowsWithoutFiles(present: [String], cutoff: Date) async throws -> (Int, Int) {
        let failed = try await database.transaction(logger: logger) { connection in
            let ids = try await connection.query(
                """
                UPDATE knowledge_documents
                SET status = 'failed', processing_error = \(Self.missingFileReason), chunk_count = 0, lease_token = NULL,
                    lease_expires_at = NULL, updated_at = now()
                WHERE status <> 'failed' AND created_at < \(cutoff) AND NOT (storage_key = ANY(\(present)))
                RETURNING id
                """,
                logger: logger
            ).collect().map { try $0.decode(UUID.self) }
            if !ids.isEmpty {
                try await connection.query("DELETE FROM knowledge_chunks WHERE document_id = ANY(\(ids))", logger: logger)
            }
            return ids.count
        }
        let closed = try await database.query(
            """
            UPDATE attachments SET deleted_at = now()
            WHERE deleted_at IS NULL AND created_at < \(cutoff) AND NOT ('att-' || id::text = ANY(\(present)))
            RETURNING id
            """,
            logger: logger
        ).count
        return (failed, closed)
    }

    /// The id in a storage key `<prefix><uuid>` (how chat names its files), or nil.
    private static func id(in key: String, prefix: String) -> UUID? {
        guard key.hasPrefix(prefix) else { return nil }
        return UUID(uuidString: String(key.dropFirst(prefix.count)))
    }
}
