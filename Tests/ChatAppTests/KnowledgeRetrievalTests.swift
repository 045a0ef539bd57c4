import Foundation
import InternalAPI
import Logging
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

@testable import ChatApp

/// The builtin responder's retrieval against a real chat database ("common terms"): a message
/// matches on its words that are rare in the tenant's knowledge base, its common words only rank;
/// a message of common words only finds the chunks holding them together first; work is bounded
/// by `PostgresKnowledgeRetriever.candidates` whatever the words; every search stays within the
/// tenant and its completed documents; the per-tenant lexeme counts follow every insert and delete.
@Suite("knowledge retrieval")
struct KnowledgeRetrievalTests {
    let logger = Logger(label: "test")

    /// A document of `tenant` with `chunks`, inserted in one statement as ingestion does.
    func document(
        _ database: Database, tenant: UUID, filename: String, status: String = "completed", chunks: [String], config: String = "english"
    ) async throws -> (document: UUID, chunks: [UUID]) {
        let id = UUID()
        let ids = chunks.map { _ in UUID() }
        try await database.query(
            """
            INSERT INTO knowledge_documents (id, tenant_id, filename, content_type, size_bytes, sha256, storage_key, status, chunk_count)
            VALUES (\(id), \(tenant), \(filename), 'text/plain', 100, 'x', \(id.uuidString), \(status), \(chunks.count))
            """,
            logger: logger
        )
        try await database.query(
            """
            INSERT INTO knowledge_chunks (id, tenant_id, document_id, position, content, search_config)
            SELECT c.id, \(tenant), \(id), c.position - 1, c.content, \(config)::regconfig
            FROM unnest(\(ids)::uuid[], \(chunks)::text[]) WITH ORDINALITY AS c(id, content, position)
            """,
            logger: logger
        )
        return (id, ids)
    }

    func search(_ database: Database, _ tenant: UUID, _ message: String) async throws -> [RetrievedChunk] {
        try await PostgresKnowledgeRetriever(client: database).search(tenantID: tenant, query: message, limit: 5, logger: logger)
    }

    /// The counts the triggers keep equal what the chunks hold, both ways.
    func countsMatchTheChunks(_ database: Database) async throws -> Bool {
        let rows = try await database.query(
            """
            WITH actual AS (
                SELECT c.tenant_id, c.search_config, l.lexeme, count(*)::int AS chunks
                FROM knowledge_chunks c CROSS JOIN LATERAL unnest(tsvector_to_array(c.search_vector)) AS l(lexeme) GROUP BY 1, 2, 3
            ), configs AS (
                SELECT tenant_id, search_config, count(*)::int AS chunks FROM knowledge_chunks GROUP BY 1, 2
            )
            SELECT (SELECT count(*) FROM (SELECT * FROM actual EXCEPT SELECT * FROM knowledge_lexemes) x)::int
                 + (SELECT count(*) FROM (SELECT * FROM knowledge_lexemes EXCEPT SELECT * FROM actual) x)::int
                 + (SELECT count(*) FROM (SELECT * FROM configs EXCEPT SELECT * FROM knowledge_search_configs) x)::int
                 + (SELECT count(*) FROM (SELECT * FROM knowledge_search_configs EXCEPT SELECT * FROM configs) x)::int
            """,
            logger: logger
        )
        return try rows.decode(Int.self).first == 0
    }

    /// Common-word filler: every chunk holds "delivery", "order" and "store", several times and close together.
    static func filler(_ count: Int) -> [String] {
        (0..<count).map { "Delivery of every order from the store: delivery order store, store order delivery, item \($0)." }
    }

    @Test func aChunkWithTheMessagesRareWordComesBeforeChunksFullOfItsCommonWords() async throws {
        let config = try await TestPostgres.freshDatabase("chatretrieval")
        try await TestPostgres.withDatabase(config) { database in
            try await MigrationRunner(ChatMigrations.all).run(on: database.client, logger: logger)
            let tenant = UUID()
            _ = try await document(database, tenant: tenant, filename: "orders.md", chunks: Self.filler(300))
            let rare = try await document(database, tenant: tenant, filename: "chile.md", chunks: ["Delivery to Valparaiso takes three days."])
            let found = try await search(database, tenant, "How long does delivery of my order take to Valparaiso?")
            // The one chunk with "Valparaiso" first, though the filler holds "delivery" and "order" more often and closer.
            #expect(found.first?.id == rare.chunks.first)
            #expect(found.first?.filename == "chile.md")
            // Fewer than five hold a rare word: chunks holding the common ones fill the rest, ranked after it.
            #expect(found.count == 5)
            #expect(found.dropFirst().allSatisfy { $0.filename == "orders.md" })
            // ts_rank_cd alone would have put the filler first.
            #expect(found.dropFirst().allSatisfy { $0.score > found[0].score })
            #expect(try await countsMatchTheChunks(database))
        }
    }

    @Test func aMessageOfCommonWordsOnlyFindsTheChunksHoldingThemTogether() async throws {
        let config = try await TestPostgres.freshDatabase("chatretrieval")
        try await TestPostgres.withDatabase(config) { database in
            try await MigrationRunner(ChatMigrations.all).run(on: database.client, logger: logger)
            let tenant = UUID()
            // "delivery" and "weekend" each in more than `candidates` chunks, together in three.
            let deliveries = (0..<250).map { "Delivery is free for every order over twenty dollars, item \($0)." }
            let weekends = (0..<250).map { "On the weekend the shop is busy, and on a weekend we bake twice, item \($0)." }
            _ = try await document(database, tenant: tenant, filename: "common.md", chunks: deliveries + weekends)
            let both = try await document(
                database, tenant: tenant, filename: "weekend-delivery.md",
                chunks: ["Weekend delivery runs on Saturdays only.", "There is no delivery on the weekend in winter.", "A weekend delivery costs extra."]
            )
            let found = try await search(database, tenant, "Do you do delivery on weekends?")
            #expect(found.count == 5)
            #expect(Set(found.prefix(3).map(\.id)) == Set(both.chunks))
            #expect(found.dropFirst(3).allSatisfy { $0.filename == "common.md" })

            // However many chunks hold all the words, at most `candidates` are ranked.
            _ = try await document(
                database, tenant: tenant, filename: "many.md", chunks: (0..<450).map { "Weekend delivery, weekend delivery again, note \($0)." }
            )
            let many = try await search(database, tenant, "Do you do delivery on weekends?")
            #expect(many.count == 5)
            let statement = try #require(PostgresKnowledgeRetriever.statement(tenantID: tenant, message: "Do you do delivery on weekends?", limit: 5))
            let plan = try await database.query(
                PostgresQuery(unsafeSQL: "EXPLAIN (ANALYZE, TIMING OFF) " + statement.sql, binds: statement.binds), logger: logger
            ).decode(String.self).joined(separator: "\n")
            let ranked = plan.split(separator: "\n").filter { $0.contains("CTE Scan on matched") || $0.contains("CTE Scan on widened") }
                .compactMap { line in line.range(of: #"actual rows=\d+"#, options: .regularExpression).map { Int(line[$0].dropFirst(12))! } }
            #expect(!ranked.isEmpty, "\(plan)")
            #expect(ranked.allSatisfy { $0 <= PostgresKnowledgeRetriever.candidates }, "\(plan)")
        }
    }

    @Test func searchesStayWithinTheTenantAndItsCompletedDocumentsAndCountsFollowDeletes() async throws {
        let config = try await TestPostgres.freshDatabase("chatretrieval")
        try await TestPostgres.withDatabase(config) { database in
            try await MigrationRunner(ChatMigrations.all).run(on: database.client, logger: logger)
            let a = UUID()
            let b = UUID()
            _ = try await document(database, tenant: a, filename: "a-orders.md", chunks: Self.filler(210))
            let aRare = try await document(database, tenant: a, filename: "a-chile.md", chunks: ["Delivery to Valparaiso takes three days."])
            // Tenant b shares every word, "Valparaiso" is common there, and it has a document still processing.
            let bCommon = try await document(
                database, tenant: b, filename: "b-chile.md", chunks: (0..<220).map { "Valparaiso delivery for an order from the store, \($0)." }
            )
            let bPending = try await document(
                database, tenant: b, filename: "b-pending.md", status: "processing", chunks: ["Valparaiso delivery by boat from Quintero."]
            )
            let forA = try await search(database, a, "delivery to Valparaiso from the store")
            #expect(forA.first?.id == aRare.chunks.first)
            #expect(forA.allSatisfy { $0.filename.hasPrefix("a-") })
            let forB = try await search(database, b, "delivery to Valparaiso by boat from Quintero")
            #expect(forB.count == 5)
            #expect(forB.allSatisfy { $0.documentID == bCommon.document })
            #expect(try await search(database, UUID(), "delivery to Valparaiso").isEmpty)
            #expect(try await search(database, a, "Quintero boat").isEmpty)
            #expect(try await countsMatchTheChunks(database))

            // Deleting documents (the chunks go by cascade) takes their words out of the counts.
            try await database.query("DELETE FROM knowledge_documents WHERE id = \(aRare.document)", logger: logger)
            try await database.query("DELETE FROM knowledge_documents WHERE id = \(bPending.document)", logger: logger)
            #expect(try await countsMatchTheChunks(database))
            #expect(try await search(database, a, "Valparaiso").isEmpty)
            let gone = try await database.query(
                "SELECT count(*)::int FROM knowledge_lexemes WHERE tenant_id = \(a) AND lexeme = 'valparaiso'", logger: logger
            ).decode(Int.self)
            #expect(gone == [0])
            // Chunks are never updated (their counts would go wrong): it is refused.
            await #expect(throws: (any Error).self) {
                try await database.query("UPDATE knowledge_chunks SET content = 'x' WHERE tenant_id = \(a)", logger: logger)
            }
        }
    }

    /// A document large enough to make the planner's statistics stale (autovacuum's rule: 50 + 10 %
    /// of the rows it knows of) analyzes the knowledge tables at once; a small one leaves them to
    /// autovacuum.
    @Test func aLargeDocumentRefreshesThePlannersStatisticsAndASmallOneDoesNot() async throws {
        let config = try await TestPostgres.freshDatabase("chatretrieval")
        try await TestPostgres.withDatabase(config) { database in
            try await MigrationRunner(ChatMigrations.all).run(on: database.client, logger: logger)
            let repository = PostgresKnowledgeRepository(client: database, outbox: Outbox(routes: [KnowledgeBaseUploaded.type: []]))
            func knownRows() async throws -> Double {
                try await database.query("SELECT reltuples::float8 FROM pg_class WHERE oid = 'knowledge_chunks'::regclass", logger: logger)
                    .decode(Double.self).first ?? .nan
            }
            // Never analyzed: PostgreSQL says -1 (0 after some index builds).
            #expect(try await knownRows() <= 0)
            _ = try await document(database, tenant: UUID(), filename: "small.md", chunks: (1...10).map { "small chunk \($0)" })
            #expect(try await repository.refreshStatistics(added: 10, logger: logger) == false)
            #expect(try await knownRows() <= 0)

            _ = try await document(database, tenant: UUID(), filename: "large.md", chunks: (1...60).map { "large chunk \($0)" })
            #expect(try await repository.refreshStatistics(added: 60, logger: logger))
            #expect(try await knownRows() == 70)
            // Now 70 rows are known: 60 more would be enough (50 + 7), 56 would not.
            #expect(try await repository.refreshStatistics(added: 56, logger: logger) == false)
            #expect(try await repository.refreshStatistics(added: 57, logger: logger))
        }
    }
}
