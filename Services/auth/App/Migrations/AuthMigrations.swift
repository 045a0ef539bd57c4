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
    ]
}
