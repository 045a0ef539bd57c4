import Foundation
import Logging
import PostgresNIO
import ServiceCore

/// Finds the chunks of a tenant's knowledge base that best match a message: PostgreSQL full-text
/// search, always within the tenant, matched on the message's rare words and ranked by `ts_rank_cd`.
protocol KnowledgeRetriever: Sendable {
    func search(tenantID: UUID, query: String, limit: Int, logger: Logger) async throws -> [RetrievedChunk]
}

struct PostgresKnowledgeRetriever: KnowledgeRetriever {
    let client: Database

    /// At most this many chunks are ranked in each tier (below), whatever the message: the bound
    /// on one search's work. Also the budget of rare words: the message's words are taken, rarest
    /// first, while the chunks holding them add up to at most this many.
    static let candidates = 200

    /// The message's distinct words (at most 32, two characters or more), space-separated: the text
    /// each configuration's `to_tsvector` turns into the message's lexemes (stemmed, stop words
    /// dropped, as the chunks' were). Nil when there is no word to search for.
    static func terms(_ text: String) -> String? {
        let words: [Substring] = text.lowercased().split(whereSeparator: { !($0.isLetter || $0.isNumber) })
            .filter { $0.count > 1 }
        var seen = Set<Substring>()
        let distinct = words.filter { seen.insert($0).inserted }.prefix(32)
        return distinct.isEmpty ? nil : distinct.joined(separator: " ")
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
    /// Bounded work whatever the words ("common terms"): the message's lexemes, in each
    /// configuration the tenant's chunks use, are looked up in `knowledge_lexemes` (how many of the
    /// tenant's chunks hold each; a word no chunk holds drops out). Rarest first, words are kept
    /// while the chunks holding them add up to at most `candidates`, and a chunk must hold one of
    /// them (`match`); when every word is common (the rarest alone is in more chunks), a chunk must
    /// hold them all instead. At most `candidates` such chunks of completed documents are taken
    /// (tier 0); only when they are fewer than `limit` are chunks holding any of the words added
    /// (tier 1, at most `candidates` again). Each is scored by `ts_rank_cd` against all the words
    /// (the common ones count there), tier 0 first. So a chunk with a rare word of the message
    /// comes before one with only its common words, and the ranking never runs over the thousands
    /// of chunks that hold a common word.
    ///
    /// The chunk searches are `OFFSET 0` subqueries, so the `(tenant_id, search_vector)` GIN index
    /// answers them and documents are looked up for those chunks only (joined freely, the planner
    /// walked a large document's chunks in order instead, the match a mere filter).
    static func statement(tenantID: UUID, message: String, limit: Int) -> PostgresQuery? {
        guard let terms = terms(message) else { return nil }
        let candidates = Self.candidates
        return
            """
            WITH terms AS MATERIALIZED (
                SELECT s.search_config AS config,
                       '''' || replace(replace(k.lexeme, chr(92), chr(92) || chr(92)), '''', '''''') || '''' AS quoted,
                       sum(k.chunks) OVER (PARTITION BY s.search_config ORDER BY k.chunks, k.lexeme) AS running
                FROM knowledge_search_configs s
                CROSS JOIN LATERAL unnest(tsvector_to_array(to_tsvector(s.search_config, \(terms)))) AS l(lexeme)
                JOIN knowledge_lexemes k ON k.tenant_id = s.tenant_id AND k.search_config = s.search_config AND k.lexeme = l.lexeme
                WHERE s.tenant_id = \(tenantID) AND k.chunks > 0
            ),
            q AS MATERIALIZED (
                SELECT config,
                       coalesce(string_agg(quoted, ' | ') FILTER (WHERE running <= \(candidates)), string_agg(quoted, ' & '))::tsquery AS match,
                       string_agg(quoted, ' | ')::tsquery AS query
                FROM terms GROUP BY config
            ),
            matched AS MATERIALIZED (
                SELECT c.id, c.document_id, c.content, c.search_vector, q.query
                FROM q CROSS JOIN LATERAL (
                    SELECT id, document_id, content, search_vector FROM knowledge_chunks
                    WHERE tenant_id = \(tenantID) AND search_config = q.config AND search_vector @@ q.match OFFSET 0
                ) c
                WHERE EXISTS (SELECT FROM knowledge_documents d WHERE d.id = c.document_id AND d.tenant_id = \(tenantID) AND d.status = 'completed')
                LIMIT \(candidates)
            ),
            widened AS MATERIALIZED (
                SELECT c.id, c.document_id, c.content, c.search_vector, q.query
                FROM q CROSS JOIN LATERAL (
                    SELECT id, document_id, content, search_vector FROM knowledge_chunks
                    WHERE tenant_id = \(tenantID) AND search_config = q.config AND search_vector @@ q.query OFFSET 0
                ) c
                WHERE (SELECT count(*) FROM matched) < \(limit) AND c.id NOT IN (SELECT id FROM matched)
                  AND EXISTS (SELECT FROM knowledge_documents d WHERE d.id = c.document_id AND d.tenant_id = \(tenantID) AND d.status = 'completed')
                LIMIT \(candidates)
            )
            SELECT f.id, f.document_id, d.filename, f.content, f.score
            FROM (
                SELECT id, document_id, content, 0 AS tier, ts_rank_cd(search_vector, query)::float8 AS score FROM matched
                UNION ALL
                SELECT id, document_id, content, 1, ts_rank_cd(search_vector, query)::float8 FROM widened
            ) f
            JOIN knowledge_documents d ON d.id = f.document_id
            ORDER BY f.tier, f.score DESC, f.id
            LIMIT \(limit)
            """
    }
}
