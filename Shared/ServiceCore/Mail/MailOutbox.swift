import Logging
import PostgresNIO

/// Writes mail into the outbox inside the transaction that makes the change it tells about (the
/// user that must verify an address, the reset that was asked for): the mail then exists exactly
/// when the change does. `MailSender` sends what is written here.
package enum MailOutbox {
    /// The PostgreSQL notification channel on which a commit that wrote mail wakes the senders.
    static let channel = "mail_outbox"

    /// Writes `message` on `connection`, which must be in the caller's transaction. A message that
    /// could never be sent (a header-injection attempt, a malformed recipient) is refused here with
    /// a permanent `MailTransportError`, taking the transaction down, rather than queued. The
    /// request id in `logger` is kept, so the sender's log lines carry it.
    ///
    /// The senders are woken by `pg_notify`, which PostgreSQL delivers only when the transaction
    /// commits (never for a rollback) and to every replica.
    package static func enqueue(_ message: MailMessage, on connection: PostgresConnection, logger: Logger) async throws {
        try message.validate()
        let requestID = logger[metadataKey: RequestID.metadataKey]?.description
        try await connection.query(
            """
            WITH mail AS (
                INSERT INTO mail_outbox (id, recipient, subject, text_body, html_body, request_id, created_at)
                VALUES (\(message.id), \(message.to), \(message.subject), \(message.textBody), \(message.htmlBody), \(requestID), \(message.date))
            )
            SELECT pg_notify(\(channel), '')
            """,
            logger: logger
        )
    }
}
