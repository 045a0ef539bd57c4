import ServiceCore

/// auth's schema, in order. Never edit a shipped migration; add the next number.
enum AuthMigrations {
    static let all: [Migration] = [
        Migration(
            1,
            "create_tenant_directory_and_users",
            [
                """
                CREATE TABLE tenant_directory (
                    tenant_id uuid PRIMARY KEY,
                    name text NOT NULL,
                    slug text NOT NULL UNIQUE,
                    created_at timestamptz NOT NULL DEFAULT now()
                )
                """,
                """
                CREATE TABLE users (
                    id uuid PRIMARY KEY,
                    tenant_id uuid NOT NULL REFERENCES tenant_directory (tenant_id) ON DELETE CASCADE,
                    email text NOT NULL,
                    password_hash text NOT NULL,
                    role text NOT NULL CHECK (role IN ('user', 'admin', 'owner', 'super_admin')),
                    full_name text,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    updated_at timestamptz NOT NULL DEFAULT now()
                )
                """,
                "CREATE UNIQUE INDEX users_email_key ON users (lower(email))",
                "CREATE INDEX users_tenant_id_idx ON users (tenant_id)",
            ]
        ),
        Migration(
            2,
            "create_signing_keys",
            [
                """
                CREATE TABLE signing_keys (
                    kid text PRIMARY KEY,
                    private_key_pem text NOT NULL,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    retired_at timestamptz
                )
                """
            ]
        ),
        Migration(
            3,
            "create_sessions_refresh_tokens_and_revocations",
            [
                // Raised to void every access token the user holds (`ver` claim): logout
                // everywhere, a role or password change, deletion.
                "ALTER TABLE users ADD COLUMN token_version integer NOT NULL DEFAULT 0",
                // A session is one refresh-token family: one sign-in, however often refreshed.
                """
                CREATE TABLE auth_sessions (
                    id uuid PRIMARY KEY,
                    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    refreshed_at timestamptz NOT NULL DEFAULT now(),
                    expires_at timestamptz NOT NULL,
                    revoked_at timestamptz,
                    revoked_reason text
                )
                """,
                "CREATE INDEX auth_sessions_user_id_idx ON auth_sessions (user_id)",
                // Only a hash of each token is kept. A rotated token keeps its successor sealed
                // with a key derived from the rotated token itself, so within the reuse interval
                // the holder of the old token gets the same successor, and nobody else can read it.
                """
                CREATE TABLE refresh_tokens (
                    token_hash bytea PRIMARY KEY,
                    session_id uuid NOT NULL REFERENCES auth_sessions (id) ON DELETE CASCADE,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    expires_at timestamptz NOT NULL,
                    rotated_at timestamptz,
                    successor_sealed bytea,
                    CHECK ((rotated_at IS NULL) = (successor_sealed IS NULL))
                )
                """,
                "CREATE INDEX refresh_tokens_session_id_idx ON refresh_tokens (session_id)",
                // What the gateway must refuse, as a change feed; a row goes once every token it
                // voids has expired.
                """
                CREATE TABLE revocations (
                    kind text NOT NULL CHECK (kind IN ('session', 'user')),
                    subject uuid NOT NULL,
                    min_token_version integer,
                    reason text NOT NULL,
                    updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
                    expires_at timestamptz NOT NULL,
                    PRIMARY KEY (kind, subject),
                    CHECK ((kind = 'user') = (min_token_version IS NOT NULL))
                )
                """,
                "CREATE INDEX revocations_feed_idx ON revocations (updated_at, kind, subject)",
            ]
        ),
        Migration(
            4,
            "create_login_failures",
            [
                // Failed sign-ins per email, whether or not an account has it (so a lockout tells
                // nobody which emails exist). An attempt is counted before its password is checked,
                // so concurrent guesses cannot exceed the limit; a success clears the row.
                """
                CREATE TABLE login_failures (
                    email text PRIMARY KEY,
                    failures integer NOT NULL,
                    last_failure_at timestamptz NOT NULL DEFAULT now(),
                    locked_until timestamptz
                )
                """
            ]
        ),
        Migration(
            5,
            "soft_delete_and_verification_of_users",
            [
                // A deleted user's row stays (for the record, and so a sign-in can be told the
                // account is gone), but its email is free for a new account.
                "ALTER TABLE users ADD COLUMN deleted_at timestamptz",
                "ALTER TABLE users ADD COLUMN email_verified_at timestamptz",
                "ALTER TABLE users ADD COLUMN last_login_at timestamptz",
                "DROP INDEX users_email_key",
                "CREATE UNIQUE INDEX users_email_key ON users (lower(email)) WHERE deleted_at IS NULL",
                "CREATE INDEX users_tenant_role_idx ON users (tenant_id, role) WHERE deleted_at IS NULL",
            ]
        ),
        Migration(
            6,
            "create_email_tokens",
            [
                // Verification and password-reset tokens: random, kept only as SHA-256, single use.
                """
                CREATE TABLE email_tokens (
                    token_hash bytea PRIMARY KEY,
                    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                    purpose text NOT NULL CHECK (purpose IN ('verify_email', 'reset_password')),
                    created_at timestamptz NOT NULL DEFAULT now(),
                    expires_at timestamptz NOT NULL,
                    used_at timestamptz
                )
                """,
                "CREATE INDEX email_tokens_user_idx ON email_tokens (user_id, purpose, created_at)",
            ]
        ),
        Migration(7, "create_mail_outbox", MailSchema.statements),
        Migration(8, "create_event_outbox", OutboxSchema.senderStatements),
        Migration(
            9,
            "signing_key_activation",
            [
                // A rotated-in key is published at once but signs only from `activates_at`, once
                // every verifier has fetched it; the key it replaces gets `retired_at` = that moment.
                "ALTER TABLE signing_keys ADD COLUMN activates_at timestamptz",
                "UPDATE signing_keys SET activates_at = created_at",
                "ALTER TABLE signing_keys ALTER COLUMN activates_at SET NOT NULL",
                "ALTER TABLE signing_keys ALTER COLUMN activates_at SET DEFAULT now()",
            ]
        ),
        Migration(
            10,
            "create_invitations",
            [
                // An invitation to join a tenant with a role: its token is random and kept only as
                // SHA-256, expires, and is used once. Accepted and revoked ones stay as the record of
                // who invited whom.
                """
                CREATE TABLE invitations (
                    id uuid PRIMARY KEY,
                    tenant_id uuid NOT NULL REFERENCES tenant_directory (tenant_id) ON DELETE CASCADE,
                    email text NOT NULL,
                    role text NOT NULL CHECK (role IN ('user', 'admin', 'owner', 'super_admin')),
                    full_name text,
                    invited_by uuid REFERENCES users (id) ON DELETE SET NULL,
                    token_hash bytea NOT NULL UNIQUE,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    expires_at timestamptz NOT NULL,
                    accepted_at timestamptz,
                    accepted_user_id uuid REFERENCES users (id) ON DELETE SET NULL,
                    revoked_at timestamptz,
                    CHECK (accepted_at IS NULL OR revoked_at IS NULL)
                )
                """,
                // At most one open (neither accepted nor revoked) invitation of an email per tenant:
                // inviting it again replaces it.
                "CREATE UNIQUE INDEX invitations_open_key ON invitations (tenant_id, email) WHERE accepted_at IS NULL AND revoked_at IS NULL",
                "CREATE INDEX invitations_tenant_idx ON invitations (tenant_id, created_at)",
            ]
        ),
        Migration(
            11,
            "create_api_keys",
            [
                // A tenant's API keys. Only a SHA-256 of the secret is kept; `prefix` and `last_four`
                // let people tell their keys apart. A key acts for its creator (`user_id`), never with
                // more than their current role; revoked keys stay for the record until pruned.
                """
                CREATE TABLE api_keys (
                    id uuid PRIMARY KEY,
                    tenant_id uuid NOT NULL REFERENCES tenant_directory (tenant_id) ON DELETE CASCADE,
                    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
                    name text NOT NULL,
                    role text NOT NULL CHECK (role IN ('user', 'admin', 'owner', 'super_admin')),
                    prefix text NOT NULL,
                    last_four text NOT NULL,
                    secret_hash bytea NOT NULL UNIQUE,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    expires_at timestamptz,
                    last_used_at timestamptz,
                    revoked_at timestamptz
                )
                """,
                "CREATE INDEX api_keys_tenant_idx ON api_keys (tenant_id, created_at) WHERE revoked_at IS NULL",
            ]
        ),
        Migration(
            40,
            "create_owner_registrations",
            [
                // tenancy's registration attempts that created (user_id) or undid (undone_at) an owner
                // here. An undone row is a tombstone: a creation under its id arriving late is refused.
                // No foreign keys: a tombstone outlives the tenant and user it names.
                """
                CREATE TABLE owner_registrations (
                    registration_id uuid PRIMARY KEY,
                    tenant_id uuid NOT NULL,
                    user_id uuid,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    undone_at timestamptz,
                    CHECK (user_id IS NOT NULL OR undone_at IS NOT NULL)
                )
                """
            ]
        ),
        // tenancy's tenant events: the directory keeps the newest name and slug (`tenancy_version`,
        // tenancy's change time in Unix microseconds; events arrive in any order).
        Migration(
            50,
            "receive_tenant_events",
            OutboxSchema.receiverStatements + ["ALTER TABLE tenant_directory ADD COLUMN tenancy_version bigint NOT NULL DEFAULT 0"]
        ),
    ]
}
