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
        // Billing core (issue 9, part B1): the subscription lifecycle, payments and their webhooks.
        Migration(
            50,
            "create_payments_and_subscription_transitions",
            [
                // New lifecycle columns; the existing ones keep their names and meanings.
                """
                ALTER TABLE subscriptions
                    ADD COLUMN cancel_at_period_end boolean NOT NULL DEFAULT false,
                    ADD COLUMN pending_plan text REFERENCES plans (id),
                    ADD COLUMN past_due_since timestamptz,
                    ADD COLUMN canceled_at timestamptz,
                    ADD COLUMN trial_ending_notified_at timestamptz,
                    ADD COLUMN trial_ended_notified_at timestamptz
                """,
                """
                CREATE TABLE subscription_transitions (
                    id uuid PRIMARY KEY,
                    tenant_id uuid NOT NULL,
                    from_status text,
                    to_status text NOT NULL,
                    from_plan text,
                    to_plan text NOT NULL,
                    event text NOT NULL,
                    cause text NOT NULL CHECK (cause IN ('payment', 'webhook', 'scheduler', 'user', 'admin')),
                    cause_ref text,
                    occurred_at timestamptz NOT NULL,
                    recorded_at timestamptz NOT NULL DEFAULT now()
                )
                """,
                "CREATE INDEX subscription_transitions_tenant ON subscription_transitions (tenant_id, occurred_at)",
                // `processing` is billing's own: a provider call is in flight until `processing_until`.
                """
                CREATE TABLE payments (
                    id uuid PRIMARY KEY,
                    tenant_id uuid NOT NULL,
                    plan text NOT NULL REFERENCES plans (id),
                    provider text NOT NULL,
                    kind text NOT NULL CHECK (kind IN ('card', 'checkout', 'manual')),
                    provider_payment_id text,
                    status text NOT NULL
                        CHECK (status IN ('processing', 'pending', 'approved', 'rejected', 'cancelled', 'refunded', 'charged_back')),
                    status_detail text,
                    amount bigint NOT NULL CHECK (amount > 0),
                    currency text NOT NULL,
                    refunded_amount bigint NOT NULL DEFAULT 0 CHECK (refunded_amount >= 0 AND refunded_amount <= amount),
                    payment_method text,
                    idempotency_key text,
                    request_fingerprint text,
                    processing_until timestamptz,
                    answer jsonb,
                    checkout_id text,
                    payer_email text,
                    created_at timestamptz NOT NULL,
                    approved_at timestamptz,
                    updated_at timestamptz NOT NULL DEFAULT now(),
                    UNIQUE (tenant_id, idempotency_key),
                    UNIQUE (provider, provider_payment_id)
                )
                """,
                "CREATE INDEX payments_tenant_created ON payments (tenant_id, created_at DESC)",
                "CREATE INDEX payments_unsettled ON payments (status) WHERE status IN ('processing', 'pending')",
                """
                CREATE TABLE refunds (
                    id uuid PRIMARY KEY,
                    payment_id uuid NOT NULL REFERENCES payments (id),
                    tenant_id uuid NOT NULL,
                    provider_refund_id text,
                    amount bigint NOT NULL CHECK (amount > 0),
                    currency text NOT NULL,
                    status text NOT NULL CHECK (status IN ('processing', 'approved', 'pending', 'failed')),
                    requested_by uuid NOT NULL,
                    created_at timestamptz NOT NULL DEFAULT now()
                )
                """,
                // A provider notification is applied once per (payment, status) it reports.
                """
                CREATE TABLE processed_webhooks (
                    provider text NOT NULL,
                    resource_id text NOT NULL,
                    status text NOT NULL,
                    processed_at timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (provider, resource_id, status)
                )
                """,
                """
                CREATE TABLE manual_payment_audit (
                    id uuid PRIMARY KEY,
                    tenant_id uuid NOT NULL,
                    plan text NOT NULL,
                    payment_id uuid NOT NULL REFERENCES payments (id),
                    reason text NOT NULL CHECK (length(btrim(reason)) > 0),
                    actor_user_id uuid NOT NULL,
                    actor_email text NOT NULL,
                    created_at timestamptz NOT NULL DEFAULT now()
                )
                """,
                // The sandbox provider's own ledger: what it "charged", so it answers `payment(id:)`
                // like a real provider, from any replica and after a restart.
                """
                CREATE TABLE sandbox_payments (
                    id text PRIMARY KEY,
                    idempotency_key text NOT NULL UNIQUE,
                    status text NOT NULL,
                    status_detail text,
                    amount bigint NOT NULL,
                    currency text NOT NULL,
                    refunded_amount bigint NOT NULL DEFAULT 0,
                    reference text NOT NULL,
                    payment_method text,
                    approve_at timestamptz,
                    created_at timestamptz NOT NULL,
                    approved_at timestamptz
                )
                """,
                """
                CREATE TABLE sandbox_refunds (
                    idempotency_key text PRIMARY KEY,
                    id text NOT NULL,
                    payment_id text NOT NULL REFERENCES sandbox_payments (id),
                    amount bigint NOT NULL
                )
                """,
            ]
        ),
        Migration(51, "create_outbox", OutboxSchema.senderStatements),
        // Stripe: the customer Stripe made for a tenant at its first completed checkout (the portal needs it).
        Migration(
            52,
            "create_stripe_customers",
            ["CREATE TABLE stripe_customers (tenant_id uuid PRIMARY KEY, customer_id text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())"]
        ),
    ]
        // Entitlements and usage (60–69): processed events, usage counters.
        + UsageMigrations.all
        // Recurring provider subscriptions (70–79): Stripe subscriptions and their invoices.
        + RecurringMigrations.all
}
