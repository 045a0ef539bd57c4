import Foundation
import ServiceCore

/// chat's schema for conversations (issue 10, conversations part): conversations per widget
/// session, messages linked to them, answer traces, and the outbox that reports answered messages
/// to billing. Appended to `ChatMigrations.all` when the application is built.
enum ConversationMigrations {
    static let all: [Migration] = [
        Migration(
            60,
            "create_conversations",
            [
                """
                CREATE TABLE conversations (
                    id uuid PRIMARY KEY,
                    tenant_id uuid NOT NULL,
                    session_id text NOT NULL REFERENCES widget_sessions (id) ON DELETE CASCADE,
                    message_count integer NOT NULL DEFAULT 0,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    updated_at timestamptz NOT NULL DEFAULT now()
                )
                """,
                // One conversation per widget session: the widget's history is the session's.
                "CREATE UNIQUE INDEX conversations_session_idx ON conversations (session_id)",
                "CREATE INDEX conversations_tenant_idx ON conversations (tenant_id, updated_at DESC, id)",
                """
                ALTER TABLE messages
                    ADD COLUMN conversation_id uuid REFERENCES conversations (id) ON DELETE CASCADE,
                    ADD COLUMN status text NOT NULL DEFAULT 'complete' CHECK (status IN ('complete', 'partial', 'refused', 'failed')),
                    ADD COLUMN sources jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(sources) = 'array'),
                    ADD COLUMN responder text
                """,
                "CREATE INDEX messages_conversation_idx ON messages (conversation_id, created_at, id)",
            ]
        ),
        Migration(
            61,
            "create_chat_traces",
            [
                """
                CREATE TABLE chat_traces (
                    id uuid PRIMARY KEY,
                    tenant_id uuid NOT NULL,
                    conversation_id uuid,
                    message_id uuid,
                    responder text NOT NULL,
                    status text NOT NULL,
                    first_token_ms integer,
                    total_ms integer NOT NULL,
                    chunks jsonb NOT NULL DEFAULT '[]',
                    words integer NOT NULL DEFAULT 0,
                    error text,
                    created_at timestamptz NOT NULL DEFAULT now()
                )
                """,
                "CREATE INDEX chat_traces_tenant_idx ON chat_traces (tenant_id, created_at DESC, id)",
            ]
        ),
        // chat's outbox (`chat.message_answered` to billing). Ingestion's onboarding event may
        // create the same tables under its own number; `IF NOT EXISTS` lets both migrations run.
        Migration(
            62,
            "create_outbox",
            OutboxSchema.senderStatements.map {
                $0.replacingOccurrences(of: "CREATE TABLE ", with: "CREATE TABLE IF NOT EXISTS ")
                    .replacingOccurrences(of: "CREATE INDEX ", with: "CREATE INDEX IF NOT EXISTS ")
            }
        ),
    ]
}
