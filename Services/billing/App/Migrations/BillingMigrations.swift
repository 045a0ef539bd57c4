import ServiceCore

/// billing's schema, in order. Never edit a shipped migration; add the next number.
enum BillingMigrations {
    static let all: [Migration] = [
        Migration(
            1,
            "create_plans",
            [
                """
                CREATE TABLE plans (
                    id text PRIMARY KEY,
                    title text NOT NULL,
                    description text NOT NULL,
                    price integer NOT NULL CHECK (price >= 0),
                    currency text NOT NULL,
                    monthly_message_quota integer NOT NULL CHECK (monthly_message_quota >= 0),
                    position integer NOT NULL,
                    is_public boolean NOT NULL
                )
                """,
                """
                INSERT INTO plans (id, title, description, price, currency, monthly_message_quota, position, is_public) VALUES
                ('trial', 'Trial', 'Free trial with every feature, for a limited time', 0, 'CLP', 1000, 0, false),
                ('starter', 'Starter', 'For small businesses starting with an AI assistant', 19990, 'CLP', 10000, 1, true),
                ('pro', 'Pro', 'For growing teams with more conversations', 49990, 'CLP', 50000, 2, true),
                ('enterprise', 'Enterprise', 'For high-volume businesses', 149990, 'CLP', 1000000, 3, true)
                """,
            ]
        ),
        Migration(
            2,
            "create_subscriptions",
            [
                """
                CREATE TABLE subscriptions (
                    id uuid PRIMARY KEY,
                    tenant_id uuid NOT NULL UNIQUE,
                    plan text NOT NULL REFERENCES plans (id),
                    status text NOT NULL CHECK (status IN ('trialing', 'active', 'past_due', 'canceled', 'incomplete')),
                    trial_ends_at timestamptz,
                    current_period_start timestamptz,
                    current_period_end timestamptz,
                    created_at timestamptz NOT NULL DEFAULT now(),
                    updated_at timestamptz NOT NULL DEFAULT now()
                )
                """
            ]
        ),
        // Tombstones of trials withdrawn by a failed registration's undo: a late start is refused.
        Migration(40, "create_withdrawn_trials", ["CREATE TABLE withdrawn_trials (tenant_id uuid PRIMARY KEY, withdrawn_at timestamptz NOT NULL DEFAULT now())"]),
    ]
        // Entitlements and usage (60–69): processed events, usage counters.
        + UsageMigrations.all
}
