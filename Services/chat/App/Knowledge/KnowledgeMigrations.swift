import ServiceCore

/// chat's migrations 51–59: the knowledge base's ingestion queue, chat's event outbox and widget
/// attachments; 80–89: indexes for speed. Migration 50 (the documents and chunks tables) is used as it is.
enum KnowledgeMigrations {
    static let all: [Migration] = [
        // chat's own events (the first processed knowledge-base document, for tenancy's onboarding).
        Migration(51, "create_event_outbox", OutboxSchema.senderStatements),
        // The ingestion queue lives on the documents themselves: a pending or processing row is a
        // job. A worker claims it with a lease (`lease_token`, `lease_expires_at`); a lease that
        // runs out (the worker died) makes it claimable again; `attempts` counts the claims.
        Migration(
            52,
            "knowledge_ingestion_queue",
            [
                """
                ALTER TABLE knowledge_documents
                    ADD COLUMN attempts integer NOT NULL DEFAULT 0,
                    ADD COLUMN next_attempt_at timestamptz NOT NULL DEFAULT now(),
                    ADD COLUMN lease_token uuid,
                    ADD COLUMN lease_expires_at timestamptz
                """,
                """
                CREATE INDEX knowledge_documents_due_idx ON knowledge_documents (next_attempt_at)
                    WHERE status IN ('pending', 'processing')
                """,
                // The tenants whose first document completed (and so whose onboarding event was
                // written): one event per tenant, whatever is deleted or reprocessed later.
                """
                CREATE TABLE knowledge_base_announced (
                    tenant_id uuid PRIMARY KEY,
                    document_id uuid NOT NULL,
                    announced_at timestamptz NOT NULL DEFAULT now()
                )
                """,
            ]
        ),
        // Files a widget user attaches in a session. Deleted ones keep their row (without the
        // file) until the session goes, so the per-session upload rate counts them too.
        Migration(
            53,
            "create_attachments",
            [
                """
                CREATE TABLE attachments (
                    id uuid PRIMARY KEY,
                    tenant_id uuid NOT NULL,
                    session_id text NOT NULL REFERENCES widget_sessions (id) ON DELETE CASCADE,
                    name text NOT NULL,
                    mime_type text NOT NULL,
                    size_bytes bigint NOT NULL CHECK (size_bytes >= 0),
                    sha256 text NOT NULL,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    deleted_at timestamptz
                )
                """,
                "CREATE INDEX attachments_session_idx ON attachments (session_id, created_at)",
            ]
        ),
        // 80–89: speed (bench/chat.sh). Retrieval asks for one tenant's chunks holding some words:
        // a GIN index on (tenant_id, search_vector) answers both at once inside the index (btree_gin
        // gives uuid a GIN operator class; a trusted extension, so the database's owner may create
        // it), where the single-column GIN index matched every tenant's chunks and the tenant was
        // filtered after. It replaces that index, and (tenant_id, search_config), from which
        // retrieval reads a tenant's text-search configurations without the table, replaces the
        // tenant_id one.
        Migration(
            80,
            "knowledge_chunks_tenant_search_index",
            [
                "CREATE EXTENSION IF NOT EXISTS btree_gin",
                "CREATE INDEX knowledge_chunks_tenant_search_idx ON knowledge_chunks USING gin (tenant_id, search_vector)",
                "CREATE INDEX knowledge_chunks_tenant_config_idx ON knowledge_chunks (tenant_id, search_config)",
                "DROP INDEX knowledge_chunks_search_idx",
                "DROP INDEX knowledge_chunks_tenant_idx",
            ]
        ),
    ]
}
