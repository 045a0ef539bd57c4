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
    ]
}
