/// The outbox's tables, as statements a service appends to its own numbered migrations
/// (`Migration(7, "create_outbox", OutboxSchema.senderStatements)`), so they are created and
/// versioned like the rest of its schema.
package enum OutboxSchema {
    /// For a service that publishes events: the events, and one delivery per (event, subscriber),
    /// so that one subscriber being down never holds back the others.
    package static let senderStatements: [String] = [
        """
        CREATE TABLE outbox_events (
            id uuid PRIMARY KEY,
            type text NOT NULL,
            source text NOT NULL,
            occurred_at timestamptz NOT NULL,
            payload jsonb NOT NULL CHECK (jsonb_typeof(payload) = 'object'),
            request_id text,
            created_at timestamptz NOT NULL DEFAULT now()
        )
        """,
        // `next_attempt_at` is also the lease: claiming a delivery moves it forward by the lease,
        // so a relay that dies mid-call hands the delivery back when its lease runs out, and the
        // relay's query needs no other condition than "due". `claim_id` names the claim holding
        // the lease, so a late answer from an expired claim cannot overwrite a newer one.
        """
        CREATE TABLE outbox_deliveries (
            event_id uuid NOT NULL REFERENCES outbox_events (id) ON DELETE CASCADE,
            subscriber text NOT NULL,
            attempts integer NOT NULL DEFAULT 0,
            next_attempt_at timestamptz NOT NULL DEFAULT now(),
            claim_id uuid,
            last_error text,
            delivered_at timestamptz,
            PRIMARY KEY (event_id, subscriber)
        )
        """,
        // Only undelivered rows are ever looked for, so delivered history costs the relay nothing.
        "CREATE INDEX outbox_deliveries_due ON outbox_deliveries (next_attempt_at) WHERE delivered_at IS NULL",
        "CREATE INDEX outbox_events_created_at ON outbox_events (created_at)",
    ]

    /// For a service that receives events: the ids it has applied, written in the same
    /// transaction as the handler's changes, so an event is applied once however often it comes.
    package static let receiverStatements: [String] = [
        """
        CREATE TABLE processed_events (
            event_id uuid PRIMARY KEY,
            type text NOT NULL,
            source text NOT NULL,
            processed_at timestamptz NOT NULL DEFAULT now()
        )
        """
    ]
}
