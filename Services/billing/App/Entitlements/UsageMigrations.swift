import ServiceCore

/// billing's schema for usage: the events it has applied and the counters they feed.
enum UsageMigrations {
    static let all: [Migration] = [
        Migration(60, "receive_events", OutboxSchema.receiverStatements),
        Migration(
            61,
            "create_usage_counters",
            [
                """
                CREATE TABLE usage_counters (
                    tenant_id uuid NOT NULL,
                    period_start timestamptz NOT NULL,
                    period_end timestamptz NOT NULL CHECK (period_end > period_start),
                    messages integer NOT NULL CHECK (messages >= 0),
                    updated_at timestamptz NOT NULL DEFAULT now(),
                    PRIMARY KEY (tenant_id, period_start, period_end)
                )
                """
            ]
        ),
    ]
}
