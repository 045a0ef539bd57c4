import ServiceCore

/// chat's schema, in order. Never edit a shipped migration; add the next number.
enum ChatMigrations {
    static let all: [Migration] = [
        Migration(
            1,
            "create_widget_sessions",
            [
                """
                CREATE TABLE widget_sessions (
                    id text PRIMARY KEY,
                    tenant_id uuid NOT NULL,
                    external_user_id text,
                    external_user_email text,
                    external_user_name text,
                    user_agent text,
                    metadata jsonb NOT NULL DEFAULT '{}',
                    first_seen_at timestamptz NOT NULL DEFAULT now(),
                    last_seen_at timestamptz NOT NULL DEFAULT now(),
                    expires_at timestamptz NOT NULL
                )
                """,
                "CREATE INDEX widget_sessions_tenant_id_idx ON widget_sessions (tenant_id)",
            ]
        ),
        Migration(
            2,
            "create_messages",
            [
                """
                CREATE TABLE messages (
                    id uuid PRIMARY KEY,
                    session_id text NOT NULL REFERENCES widget_sessions (id) ON DELETE CASCADE,
                    tenant_id uuid NOT NULL,
                    role text NOT NULL CHECK (role IN ('user', 'assistant')),
                    content text NOT NULL,
                    created_at timestamptz NOT NULL DEFAULT now()
                )
                """,
                "CREATE INDEX messages_session_id_idx ON messages (session_id, created_at)",
            ]
        ),
        // tenancy's tenant events (a suspension drops the cached tenant at once).
        Migration(40, "receive_tenant_events", OutboxSchema.receiverStatements),
        // Usage per day for tenancy's administration, per tenant and over all of them.
        Migration(
            41,
            "usage_indexes",
            [
                "CREATE INDEX messages_tenant_created_idx ON messages (tenant_id, created_at)",
                "CREATE INDEX messages_created_idx ON messages (created_at)",
                "CREATE INDEX widget_sessions_first_seen_idx ON widget_sessions (first_seen_at)",
            ]
        ),
        // The knowledge base: a tenant's uploaded documents and the chunks of text the responders
        // retrieve from. Ingestion (its queue and worker) writes them; retrieval reads the chunks,
        // always by tenant. `search_config` is the text-search configuration of the tenant's
        // language when the document was processed (`simple` when there is none).
        Migration(
            50,
            "create_knowledge_base",
            [
                """
                CREATE TABLE knowledge_documents (
                    id uuid PRIMARY KEY,
                    tenant_id uuid NOT NULL,
                    filename text NOT NULL,
                    content_type text NOT NULL,
                    size_bytes bigint NOT NULL CHECK (size_bytes >= 0),
                    sha256 text NOT NULL,
                    storage_key text NOT NULL,
                    status text NOT NULL CHECK (status IN ('pending', 'processing', 'completed', 'failed')),
                    chunk_count integer NOT NULL DEFAULT 0,
                    processing_error text,
                    uploaded_by text,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    updated_at timestamptz NOT NULL DEFAULT now(),
                    processed_at timestamptz
                )
                """,
                "CREATE INDEX knowledge_documents_tenant_idx ON knowledge_documents (tenant_id, created_at DESC)",
                """
                CREATE TABLE knowledge_chunks (
                    id uuid PRIMARY KEY,
                    tenant_id uuid NOT NULL,
                    document_id uuid NOT NULL REFERENCES knowledge_documents (id) ON DELETE CASCADE,
                    position integer NOT NULL CHECK (position >= 0),
                    content text NOT NULL,
                    search_config regconfig NOT NULL DEFAULT 'simple',
                    search_vector tsvector GENERATED ALWAYS AS (to_tsvector(search_config, content)) STORED,
                    UNIQUE (document_id, position)
                )
                """,
                "CREATE INDEX knowledge_chunks_search_idx ON knowledge_chunks USING gin (search_vector)",
                "CREATE INDEX knowledge_chunks_tenant_idx ON knowledge_chunks (tenant_id)",
            ]
        ),
    ]
        // 51–59: knowledge-base ingestion, chat's outbox, attachments.
        + KnowledgeMigrations.all
        // 70–79: knowledge administration (seed 001).
        + KnowledgeAdministrationMigrations.all
        // 90–99: retrieval's per-tenant lexeme counts (issue 10's speed goals).
        + KnowledgeSearchMigrations.all
}
