/// The mail outbox's table, as statements a service appends to its own numbered migrations
/// (`Migration(12, "create_mail_outbox", MailSchema.statements)`), so it is created and versioned
/// like the rest of its schema.
package enum MailSchema {
    package static let statements: [String] = [
        // `next_attempt_at` is also the lease: claiming a mail moves it forward by the lease, so a
        // sender that dies mid-send hands the mail back when the lease runs out, and finding work
        // needs no other condition than "due". `claim_id` names the claim holding the lease, so a
        // late outcome from an expired claim cannot overwrite a newer one's. A mail ends either
        // sent or failed (permanently refused), never both.
        """
        CREATE TABLE mail_outbox (
            id uuid PRIMARY KEY,
            recipient text NOT NULL,
            subject text NOT NULL,
            text_body text NOT NULL,
            html_body text,
            request_id text,
            created_at timestamptz NOT NULL DEFAULT now(),
            attempts integer NOT NULL DEFAULT 0,
            next_attempt_at timestamptz NOT NULL DEFAULT now(),
            claim_id uuid,
            sent_at timestamptz,
            failed_at timestamptz,
            last_error text,
            CHECK (sent_at IS NULL OR failed_at IS NULL)
        )
        """,
        // Only mail still to send is ever looked for, so history costs the sender nothing.
        "CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at) WHERE sent_at IS NULL AND failed_at IS NULL",
        "CREATE INDEX mail_outbox_created_at ON mail_outbox (created_at)",
    ]
}
