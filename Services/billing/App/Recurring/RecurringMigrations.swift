import ServiceCore

/// billing's schema for recurring provider subscriptions (Stripe Billing) and their invoices (70–79).
enum RecurringMigrations {
    static let all: [Migration] = [
        Migration(
            70,
            "create_stripe_subscriptions_and_invoice_payments",
            [
                // One row per Stripe subscription billing knows: whose it is, Stripe's status, and the
                // `created` of the last event applied to it, so an older event never undoes a newer one.
                """
                CREATE TABLE stripe_subscriptions (
                    subscription_id text PRIMARY KEY,
                    tenant_id uuid NOT NULL,
                    customer_id text,
                    status text,
                    last_event_at timestamptz,
                    updated_at timestamptz NOT NULL DEFAULT now()
                )
                """,
                "CREATE INDEX stripe_subscriptions_tenant ON stripe_subscriptions (tenant_id)",
                "CREATE INDEX stripe_customers_customer ON stripe_customers (customer_id)",
                // A paid Stripe invoice is a payment of its own (`kind = 'invoice'`), once per invoice id,
                // with the period it paid for.
                "ALTER TABLE payments DROP CONSTRAINT payments_kind_check",
                "ALTER TABLE payments ADD CONSTRAINT payments_kind_check CHECK (kind IN ('card', 'checkout', 'manual', 'invoice'))",
                "ALTER TABLE payments ADD COLUMN provider_invoice_id text, ADD COLUMN period_start timestamptz, ADD COLUMN period_end timestamptz",
                "CREATE UNIQUE INDEX payments_provider_invoice ON payments (provider, provider_invoice_id) WHERE provider_invoice_id IS NOT NULL",
            ]
        )
    ]
}
