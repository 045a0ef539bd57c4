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
        // Registration safe to retry (`Idempotency-Key`): one row per key, holding only a keyed fingerprint of
        // the request (never its password) and, once finished, the answer to replay: the non-secret
        // body of a 201 (tokens are minted afresh) or a refusal's error body.
        Migration(
            10,
            "create_registration_requests",
            [
                """
                CREATE TABLE registration_requests (
                    idempotency_key text PRIMARY KEY,
                    fingerprint bytea NOT NULL,
                    registration_id uuid NOT NULL,
                    state text NOT NULL CHECK (state IN ('in_progress', 'completed')),
                    response_status integer,
                    response_body jsonb,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    expires_at timestamptz NOT NULL,
                    CHECK ((state = 'completed') = (response_status IS NOT NULL))
                )
                """,
                "CREATE INDEX registration_requests_expires_at ON registration_requests (expires_at)",
            ]
        ),
        // The registration attempt that made a tenant: the id auth and billing know the attempt by,
        // so that its undo, however late, names the same attempt (docs/design.md, registration saga).
        Migration(11, "tenants_registration_id", ["ALTER TABLE tenants ADD COLUMN registration_id uuid UNIQUE"]),
        // Themes and branding (20–29).
        Migration(
            20,
            "create_tenant_themes",
            [
                // Only the fields a tenant set; the rest answer their defaults (ThemeFields), so a
                // changed default reaches every tenant that never chose otherwise.
                """
                CREATE TABLE tenant_themes (
                    tenant_id uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
                    overrides jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(overrides) = 'object'),
                    updated_at timestamptz NOT NULL DEFAULT now()
                )
                """
            ]
        ),
        Migration(
            21,
            "create_branding_assets",
            [
                // The file is in asset storage under `id`; the client's file name is kept for display only.
                """
                CREATE TABLE branding_assets (
                    id uuid PRIMARY KEY,
                    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
                    asset_type text NOT NULL CHECK (asset_type IN ('logo', 'favicon', 'hero_image', 'og_image', 'background')),
                    original_name text NOT NULL,
                    mime_type text NOT NULL,
                    file_size integer NOT NULL CHECK (file_size > 0),
                    width integer NOT NULL CHECK (width > 0),
                    height integer NOT NULL CHECK (height > 0),
                    sha256 text NOT NULL,
                    created_at timestamptz NOT NULL DEFAULT now()
                )
                """,
                "CREATE INDEX branding_assets_tenant ON branding_assets (tenant_id, asset_type, created_at DESC)",
            ]
        ),
        // Agent configuration, widget configuration, tenant settings (30-39).
        Migration(
            30,
            "agent_configs_model_and_guardrails",
            [
                """
                ALTER TABLE agent_configs
                    ADD COLUMN temperature double precision NOT NULL DEFAULT 0.7 CHECK (temperature >= 0.3 AND temperature <= 1.0),
                    ADD COLUMN max_tokens integer NOT NULL DEFAULT 500 CHECK (max_tokens BETWEEN 50 AND 2000),
                    ADD COLUMN model text NOT NULL DEFAULT 'gpt-4o-mini',
                    ADD COLUMN store_context jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(store_context) = 'object'),
                    ADD COLUMN pii_redaction boolean NOT NULL DEFAULT true,
                    ADD COLUMN blocked_terms text[] NOT NULL DEFAULT '{}'
                """
            ]
        ),
        // Widget configuration and tenant settings: the validated fields a tenant changed, as a JSON
        // object merged over the defaults when read (a field never set reads as its default).
        // (Written out, not generated: a shipped migration must never change with the code.)
        Migration(
            31,
            "create_widget_configs",
            [
                """
                CREATE TABLE widget_configs (
                    tenant_id uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
                    settings jsonb NOT NULL CHECK (jsonb_typeof(settings) = 'object'),
                    created_at timestamptz NOT NULL DEFAULT now(),
                    updated_at timestamptz NOT NULL DEFAULT now()
                )
                """
            ]
        ),
        Migration(
            32,
            "create_tenant_settings",
            [
                """
                CREATE TABLE tenant_settings (
                    tenant_id uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
                    settings jsonb NOT NULL CHECK (jsonb_typeof(settings) = 'object'),
                    created_at timestamptz NOT NULL DEFAULT now(),
                    updated_at timestamptz NOT NULL DEFAULT now()
                )
                """
            ]
        ),
        // Platform administration: tenant renamed, suspended, reactivated, for auth and chat.
        Migration(40, "create_event_outbox", OutboxSchema.senderStatements),
        // chat's responder per tenant (issue 10, conversations part): null follows chat's CHAT_RESPONDER.
        Migration(
            50, "agent_configs_responder",
            ["ALTER TABLE agent_configs ADD COLUMN responder text CHECK (responder IN ('builtin', 'openai'))"]
        ),
    ]
}
