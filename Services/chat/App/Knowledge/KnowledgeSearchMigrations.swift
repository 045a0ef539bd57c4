import ServiceCore

/// chat's migrations 90–99: what retrieval needs to stay bounded (issue 10's speed goals).
///
/// Retrieval matches a question on its words that are rare in the tenant's knowledge base and
/// uses the common ones only for ranking ("common terms", as Elasticsearch calls it), so how
/// many chunks a question's words hold has to be known before the search: per tenant and
/// text-search configuration, how many chunks hold each lexeme (`knowledge_lexemes`) and which
/// configurations the tenant's chunks use, with how many chunks (`knowledge_search_configs`).
/// Statement-level triggers keep both exact in the same transaction as every insert and delete
/// of chunks (ingestion, reprocessing, document and tenant deletion, the storage sweep, and a
/// `COPY`); rows are upserted in key order, so two transactions of one tenant wait for each other
/// rather than deadlock. Counting with the GIN index at question time instead cost about 1 ms a
/// word on a 1,000-chunk tenant (the index's posting list and the table are read for every
/// matching chunk), where these rows are one primary-key probe each.
///
/// The `(tenant_id, search_config)` btree of migration 80 goes: retrieval now reads a tenant's
/// configurations from `knowledge_search_configs`, and with the btree there the planner answered
/// "this tenant's chunks holding these words" by reading every chunk of a small tenant through it
/// and testing the words on each (its estimate for a tsquery known only at run time is a guess),
/// work that grows with the tenant. Without it, the `(tenant_id, search_vector)` GIN index answers.
enum KnowledgeSearchMigrations {
    static let all: [Migration] = [
        Migration(
            90,
            "knowledge_lexeme_counts",
            [
                """
                CREATE TABLE knowledge_search_configs (
                    tenant_id uuid NOT NULL,
                    search_config regconfig NOT NULL,
                    chunks integer NOT NULL,
                    PRIMARY KEY (tenant_id, search_config)
                )
                """,
                """
                CREATE TABLE knowledge_lexemes (
                    tenant_id uuid NOT NULL,
                    search_config regconfig NOT NULL,
                    lexeme text NOT NULL,
                    chunks integer NOT NULL,
                    PRIMARY KEY (tenant_id, search_config, lexeme)
                )
                """,
                """
                CREATE FUNCTION knowledge_chunks_count_lexemes() RETURNS trigger LANGUAGE plpgsql AS $body$
                DECLARE
                    sign integer := CASE WHEN TG_OP = 'INSERT' THEN 1 ELSE -1 END;
                BEGIN
                    INSERT INTO knowledge_search_configs AS k (tenant_id, search_config, chunks)
                    SELECT tenant_id, search_config, sign * count(*) FROM changed_chunks
                    GROUP BY 1, 2 ORDER BY 1, 2
                    ON CONFLICT (tenant_id, search_config) DO UPDATE SET chunks = k.chunks + excluded.chunks;
                    INSERT INTO knowledge_lexemes AS k (tenant_id, search_config, lexeme, chunks)
                    SELECT c.tenant_id, c.search_config, l.lexeme, sign * count(*)
                    FROM changed_chunks c CROSS JOIN LATERAL unnest(tsvector_to_array(c.search_vector)) AS l(lexeme)
                    GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
                    ON CONFLICT (tenant_id, search_config, lexeme) DO UPDATE SET chunks = k.chunks + excluded.chunks;
                    IF sign < 0 THEN
                        DELETE FROM knowledge_search_configs
                        WHERE chunks <= 0 AND tenant_id IN (SELECT tenant_id FROM changed_chunks);
                        DELETE FROM knowledge_lexemes
                        WHERE chunks <= 0 AND tenant_id IN (SELECT tenant_id FROM changed_chunks);
                    END IF;
                    RETURN NULL;
                END
                $body$
                """,
                """
                CREATE TRIGGER knowledge_chunks_counted_in AFTER INSERT ON knowledge_chunks
                REFERENCING NEW TABLE AS changed_chunks FOR EACH STATEMENT EXECUTE FUNCTION knowledge_chunks_count_lexemes()
                """,
                """
                CREATE TRIGGER knowledge_chunks_counted_out AFTER DELETE ON knowledge_chunks
                REFERENCING OLD TABLE AS changed_chunks FOR EACH STATEMENT EXECUTE FUNCTION knowledge_chunks_count_lexemes()
                """,
                // Chunks are never updated (a reprocess deletes and inserts): refuse it rather than miscount.
                """
                CREATE FUNCTION knowledge_chunks_refuse_update() RETURNS trigger LANGUAGE plpgsql AS $body$
                BEGIN
                    RAISE EXCEPTION 'knowledge_chunks are not updated: delete and insert them';
                END
                $body$
                """,
                """
                CREATE TRIGGER knowledge_chunks_not_updated BEFORE UPDATE OF tenant_id, content, search_config ON knowledge_chunks
                FOR EACH STATEMENT EXECUTE FUNCTION knowledge_chunks_refuse_update()
                """,
                """
                INSERT INTO knowledge_search_configs (tenant_id, search_config, chunks)
                SELECT tenant_id, search_config, count(*) FROM knowledge_chunks GROUP BY 1, 2
                """,
                """
                INSERT INTO knowledge_lexemes (tenant_id, search_config, lexeme, chunks)
                SELECT c.tenant_id, c.search_config, l.lexeme, count(*)
                FROM knowledge_chunks c CROSS JOIN LATERAL unnest(tsvector_to_array(c.search_vector)) AS l(lexeme)
                GROUP BY 1, 2, 3
                """,
                "DROP INDEX knowledge_chunks_tenant_config_idx",
            ]
        )
    ]
}
