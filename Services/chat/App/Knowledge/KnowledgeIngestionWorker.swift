import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import ServiceCore
import ServiceLifecycle

/// Turns uploaded documents into chunks. Jobs are the pending documents in PostgreSQL, claimed
/// with `FOR UPDATE SKIP LOCKED` under a lease, so any number of chat replicas share the queue and
/// each document is worked on by one of them at a time; a worker that dies mid-job leaves a lease
/// that runs out, and the job is claimed again (up to `maxAttempts` claims, then it fails with the
/// reason recorded). Uploads and reprocess requests wake the workers of every replica through
/// `pg_notify`; polling covers missed notifications.
struct KnowledgeIngestionWorker: Service {
    struct Settings: Sendable {
        var batchSize = 2
        var lease: Duration = .seconds(120)
        var maxAttempts = 3
        var pollInterval: Duration = .seconds(2)
        /// More chunks than this fail the document (a library, not a document).
        var maxChunks = 20_000
    }

    let repository: any KnowledgeRepository
    let storage: any AssetStorage
    let extractor: TextExtractor
    /// The tenant's settings language (tenancy's tenant directory); nil for a tenant tenancy does
    /// not know (removed), which indexes with `simple`; throws when tenancy cannot be asked.
    let language: @Sendable (UUID, Logger) async throws -> String?
    let database: Database
    let settings: Settings
    let logger: Logger
    var chunker = TextChunker()

    func run() async throws {
        let configuration = QueueWorkerConfiguration(
            pollInterval: settings.pollInterval, batchSize: settings.batchSize, lease: settings.lease, retention: .seconds(86_400)
        )
        let loop = QueueWorkerLoop(
            name: "knowledge ingestion", channel: PostgresKnowledgeRepository.channel, database: database, configuration: configuration,
            logger: logger
        )
        await loop.run(
            workOnDueBatch: { try await workOnDueBatch() },
            countPending: "SELECT count(*)::int FROM knowledge_documents WHERE status IN ('pending', 'processing')",
            recordPending: { _ in },
            // Documents are the tenant's, not a history: nothing to purge.
            purgeChunk: { _ in 0 }
        )
    }

    /// Claims due jobs and works on them side by side; returns how many were claimed.
    func workOnDueBatch() async throws -> Int {
        let jobs = try await repository.claim(limit: settings.batchSize, lease: settings.lease, maxAttempts: settings.maxAttempts, logger: logger)
        await withTaskGroup(of: Void.self) { group in
            for job in jobs { group.addTask { await process(job) } }
        }
        return jobs.count
    }

    func process(_ job: ClaimedDocument) async {
        let logger = logger.with(["document_id": "\(job.id)", "tenant_id": "\(job.tenantID)", "attempt": "\(job.attempts)"])
        do {
            guard let format = DocumentFormat.named(job.filename) else { throw ExtractionFailure("the document's format is not supported") }
            guard let stored = try await storage.get(job.storageKey) else { throw ExtractionFailure("the stored file is missing") }
            // tenancy unreachable: retried later.
            let language = try await self.language(job.tenantID, logger)
            let text = try await extractor.text(of: Data(stored.readableBytesView), format: format)
            let chunker = self.chunker
            let chunks = try await NIOThreadPool.singleton.runIfActive { chunker.chunks(of: text.replacingOccurrences(of: "\u{0}", with: "")) }
            guard !chunks.isEmpty else { throw ExtractionFailure("no text was found in the document") }
            guard chunks.count <= settings.maxChunks else {
                throw ExtractionFailure("the document makes more than \(settings.maxChunks) chunks of text")
            }
            let config = SearchConfiguration.forLanguage(language)
            if try await repository.complete(job, chunks: chunks, searchConfig: config, logger: logger) {
                logger.notice("knowledge document processed", metadata: ["chunks": "\(chunks.count)", "search_config": "\(config)"])
                await refreshStatistics(added: chunks.count, logger: logger)
            } else {
                logger.info("knowledge document changed while processed; result dropped")
            }
        } catch let failure as ExtractionFailure {
            logger.notice("knowledge document failed", metadata: ["reason": "\(failure.reason)"])
            await record(job, reason: failure.reason, permanent: true, logger: logger)
        } catch {
            logger.warning("knowledge document not processed; will retry", metadata: ["error": "\(String(reflecting: error))"])
            await record(job, reason: "processing failed: \(error)", permanent: false, logger: logger)
        }
    }

    /// A failure here leaves the statistics to autovacuum; the document is completed either way.
    private func refreshStatistics(added: Int, logger: Logger) async {
        do {
            if try await repository.refreshStatistics(added: added, logger: logger) {
                logger.info("knowledge statistics refreshed after a large document", metadata: ["chunks": "\(added)"])
            }
        } catch {
            logger.warning("could not refresh the knowledge statistics", metadata: ["error": "\(String(reflecting: error))"])
        }
    }

    private func record(_ job: ClaimedDocument, reason: String, permanent: Bool, logger: Logger) async {
        // Backoff: 10 s, 20 s, 40 s … at most 5 minutes.
        let retryAfter = Duration.seconds(min(300, 10 << min(job.attempts - 1, 5)))
        do {
            try await repository.fail(
                job, reason: String(reason.prefix(1_000)), permanent: permanent, maxAttempts: settings.maxAttempts, retryAfter: retryAfter,
                logger: logger
            )
        } catch {
            // The lease runs out and the job is claimed again.
            logger.warning("could not record a knowledge document's failure", metadata: ["error": "\(String(reflecting: error))"])
        }
    }
}

extension Logger {
    fileprivate func with(_ metadata: Logger.Metadata) -> Logger {
        var logger = self
        for (key, value) in metadata { logger[metadataKey: key] = value }
        return logger
    }
}
