import ServiceCore

/// tenancy's schema, in order. Never edit a shipped migration; add the next number.
enum TenancyMigrations {
    static let all: [Migration] = [
        Migration(
            1,
            "create_tenants",
            [
                """
                CREATE TABLE tenants (
                    id uuid PRIMARY KEY,
                    name text NOT NULL,
                    slug text NOT NULL UNIQUE,
                    status text NOT NULL CHECK (status IN ('provisioning', 'trial', 'active', 'suspended')),
                    allowed_origins text[] NOT NULL DEFAULT '{}',
                    rate_limit_per_minute integer NOT NULL,
                    monthly_message_quota integer NOT NULL DEFAULT 1000,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    updated_at timestamptz NOT NULL DEFAULT now()
                )
                """
            ]
        ),
        Migration(
            2,
            "create_onboarding_progress",
            [
                """
                CREATE TABLE onboarding_progress (
                    id uuid PRIMARY KEY,
                    tenant_id uuid NOT NULL UNIQUE REFERENCES tenants (id) ON DELETE CASCADE,
                    step_account_created boolean NOT NULL DEFAULT false,
                    step_email_verified boolean NOT NULL DEFAULT false,
                    step_branding_uploaded boolean NOT NULL DEFAULT false,
                    step_knowledge_base_uploaded boolean NOT NULL DEFAULT false,
                    step_agent_configured boolean NOT NULL DEFAULT false,
                    step_widget_tested boolean NOT NULL DEFAULT false,
                    step_payment_completed boolean NOT NULL DEFAULT false,
                    completed_at timestamptz,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    updated_at timestamptz NOT NULL DEFAULT now()
                )
                """
            ]
        ),
        Migration(
            3,
            "create_agent_configs",
            [
                """
                CREATE TABLE agent_configs (
                    tenant_id uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
                    agent_name text NOT NULL,
                    tone text NOT NULL CHECK (tone IN ('friendly', 'professional', 'casual', 'formal')),
                    greeting_message text NOT NULL,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    updated_at timestamptz NOT NULL DEFAULT now()
                )
                """
            ]
        ),
        Migration(
            4,
            "tenants_change_feed",
            [
                // The gateway follows tenants by `updated_at` (status, rate limit): every change bumps it,
                // whoever makes it, so no writer can forget to.
                """
                CREATE FUNCTION tenants_touch() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    NEW.updated_at := clock_timestamp();
                    RETURN NEW;
                END
                $$
                """,
                "CREATE TRIGGER tenants_touch BEFORE UPDATE ON tenants FOR EACH ROW EXECUTE FUNCTION tenants_touch()",
                "CREATE INDEX tenants_updated_at_id ON tenants (updated_at, id)",
            ]
        ),
        Migration(5, "receive_events", OutboxSchema.receiverStatements),
        // Sign-up into an existing tenant by its slug, for tenants that open it (auth asks).
        Migration(6, "tenants_allow_signup", ["ALTER TABLE tenants ADD COLUMN allow_signup boolean NOT NULL DEFAULT false"]),
        // Platform administration: tenant renamed, suspended, reactivated, for auth and chat.
        Migration(40, "create_event_outbox", OutboxSchema.senderStatements),
    ]
}
