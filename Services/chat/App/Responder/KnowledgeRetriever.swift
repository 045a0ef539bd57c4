import Foundation
import Logging
import PostgresNIO
import ServiceCore

/// Finds the chunks of a tenant's knowledge base that best match a message: PostgreSQL full-text
/// search, always within the tenant, ranked by `ts_rank_cd`.
protocol KnowledgeRetriever: Sendable {
    func search(tenantID: UUID, query: String, limit: Int, logger: Logger) async throws -> [RetrievedChunk]
}

struct PostgresKnowledgeRetriever: KnowledgeRetriever {
    let client: Database

    /// The message's words joined with `or` for `websearch_to_tsquery`: a chunk that holds some
    /// of them matches and ranks by how many and how close. Each chunk's query is built with that
    /// chunk's own `search_config` (the tenant's language when it was ingested, `simple`
    /// otherwise), so stemming and stop words are the same on both sides.
    static func orQuery(_ text: String) -> String? {
        let words = text.lowercased().split(whereSeparator: { !($0.isLetter || $0.isNumber) })
            .filter { $0.count > 1 && $0 != "or" }
        var seen = Set<Substring>()
        let distinct = words.filter { seen.insert($0).inserted }.prefix(32)
        return distinct.isEmpty ? nil : distinct.joined(separator: " or ")
    }

    func search(tenantID: UUID, query: String, limit: Int, logger: Logger) async throws -> [RetrievedChunk] {
        guard let statement = Self.statement(tenantID: tenantID, message: query, limit: limit) else { return [] }
        return try await client.query(statement, logger: logger).decode((UUID, UUID, String, String, Double).self).map {
            RetrievedChunk(id: $0, documentID: $1, filename: $2, content: $3, score: $4)
        }
    }

    /// The one retrieval statement (rows: chunk id, document id, file name, content, score); nil
    /// when the message has no word to search for. `RetrievalTiming` times and explains this very statement.
    ///
    /// The query is built once for each configuration the tenant's chunks use (usually one; read
    /// from the `(tenant_id, search_config)` index alone) and kept as a value (`MATERIALIZED`),
    /// so the `(tenant_id, search_vector)` GIN index answers "this tenant's chunks holding these
    /// words" and only those are ranked. Joining every configuration PostgreSQL knows instead had
    /// the planner re-parse the query for every chunk of the tenant: 80-130 ms for 1,000 chunks.
    static func statement(tenantID: UUID, message: String, limit: Int) -> PostgresQuery? {
        guard let terms = orQuery(message) else { return nil }
        return
            """
            WITH q AS MATERIALIZED (
                SELECT s.config, websearch_to_tsquery(s.config, \(terms)) AS query
                FROM (SELECT DISTINCT search_config AS config FROM knowledge_chunks WHERE tenant_id = \(tenantID)) s
            )
            SELECT c.id, c.document_id, d.filename, c.content, ts_rank_cd(c.search_vector, q.query)::float8 AS score
            FROM q
            JOIN knowledge_chunks c ON c.tenant_id = \(tenantID) AND c.search_config = q.config AND c.search_vector @@ q.query
            JOIN knowledge_documents d ON d.id = c.document_id AND d.tenant_id = c.tenant_id
            WHERE d.status = 'completed'
            ORDER BY score DESC, c.id
            LIMIT \(limit)
            """
    }
}
