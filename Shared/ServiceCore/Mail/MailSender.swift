import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle

/// Sends the mail `MailOutbox.enqueue` wrote, through the configured `MailTransport`: never lost
/// (a mail stays queued until the transport accepts it or refuses it permanently), retried with
/// backoff (`OutboxRetryPolicy`) while failures are transient, and sent once. Run one in every
/// replica of a service that sends mail, among the application's services.
///
/// Several senders share the work through a lease rather than a row lock held across the send: a
/// short statement claims due mail with `FOR UPDATE SKIP LOCKED` and moves its `next_attempt_at`
/// one lease ahead, then the sends run with no transaction open (a lock would hold a transaction
/// and a pooled connection for as long as the relay takes). The lease outlasts a whole batch of
/// sends at the transport's timeout, so no two senders ever hold the same mail at once.
///
/// Sent once: a mail is marked sent in the statement right after the transport accepted it, and a
/// mail marked sent is never claimed again. One window cannot be closed by any sender that talks
/// to SMTP: the relay accepted the mail (its `250` after the message text) but the mark was never
/// written — the process died in between, or the database was away. The mail is then sent again
/// when its lease ends. The window is kept as small as it can be: the mark is the very next
/// statement; it is written even when the sender is being cancelled (the send itself is never cut
/// short once started); if the database fails, the mark is retried until the lease is nearly over,
/// so an outage shorter than the lease causes no repeat; and a repeat carries the same
/// `Message-ID`, by which receiving systems can recognise it. A timeout while the relay is
/// deciding on the message text is the same window from the other side, and is retried too: a
/// lost mail is the worse outcome.
///
/// A sender sleeps up to `pollInterval` between looks and is woken at once by the `pg_notify` of
/// any transaction that enqueued mail. Sent and failed mail is deleted after `retention`: the
/// bodies carry sign-in links that should not outlive their use in a table.
package struct MailSender: Service {
    package typealias Configuration = QueueWorkerConfiguration

    /// Batches of 4 sent side by side (the most pool threads a slow relay can hold), a lease of
    /// 5 minutes (beyond 4 sends at the longest `SMTP_TIMEOUT_SECONDS`), mail kept 2 days.
    package static let defaultConfiguration = Configuration(batchSize: 4, lease: .seconds(300), retention: .seconds(2 * 86_400))

    let database: Database
    let transport: any MailTransport
    let configuration: Configuration
    let metrics: MailSenderMetrics
    let logger: Logger

    package init(
        database: Database, transport: any MailTransport, configuration: Configuration = defaultConfiguration, metrics: ServiceMetrics, logger: Logger
    ) {
        precondition(
            transport.sendTimeout * configuration.batchSize < configuration.lease,
            "mail sender: the lease must exceed a batch of sends at the transport's timeout, or a mail could be sent twice at once"
        )
        self.database = database
        self.transport = transport
        self.configuration = configuration
        self.metrics = MailSenderMetrics(factory: metrics.factory)
        self.logger = logger
    }

    package func run() async throws {
        let loop = QueueWorkerLoop(name: "mail sender", channel: MailOutbox.channel, database: database, configuration: configuration, logger: logger)
        await loop.run(
            workOnDueBatch: sendDueBatch,
            countPending: "SELECT count(*)::int FROM mail_outbox WHERE sent_at IS NULL AND failed_at IS NULL",
            recordPending: metrics.recordPending,
            purgeChunk: purgeFinished(olderThan:)
        )
    }

    /// Claims up to a batch of due mail and sends it side by side; returns how many it claimed,
    /// once every send has ended and its outcome is recorded.
    func sendDueBatch() async throws -> Int {
        let claim = UUID()
        let leaseEnds = ContinuousClock.now + configuration.lease
        let rows = try await database.query(
            """
            WITH due AS (
                SELECT id FROM mail_outbox
                WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= now()
                ORDER BY next_attempt_at
                LIMIT \(configuration.batchSize)
                FOR UPDATE SKIP LOCKED
            )
            UPDATE mail_outbox m
            SET next_attempt_at = now() + \(configuration.lease.inSeconds) * interval '1 second', claim_id = \(claim)
            FROM due
            WHERE m.id = due.id
            RETURNING m.id, m.recipient, m.subject, m.text_body, m.html_body, m.created_at, m.attempts, m.request_id
            """,
            logger: logger
        )
        let mails = try rows.decode((UUID, String, String, String, String?, Date, Int, String?).self).map(ClaimedMail.init)
        await withTaskGroup(of: Void.self) { group in
            for mail in mails {
                group.addTask { await self.send(mail, claim: claim, leaseEnds: leaseEnds) }
            }
        }
        return mails.count
    }

    private func send(_ mail: ClaimedMail, claim: UUID, leaseEnds: ContinuousClock.Instant) async {
        var logger = self.logger
        logger[metadataKey: RequestID.metadataKey] = .string(mail.requestID ?? mail.message.id.uuidString.lowercased())
        logger[metadataKey: "mail_id"] = .string(mail.message.id.uuidString.lowercased())
        do {
            try await transport.send(mail.message, logger: logger)
        } catch {
            // Cancelled before the conversation began (one begun always finishes): the lease hands it back.
            guard !Task.isCancelled else { return }
            await recordFailure(of: mail, claim: claim, error: error, logger: logger)
            return
        }
        metrics.recordSent()
        await recordSent(mail, until: leaseEnds, logger: logger)
    }

    /// Marks `mail` sent, whoever holds its claim now: the relay has it. An unstructured task, so
    /// that cancelling the sender cannot stop the mark from being written.
    private func recordSent(_ mail: ClaimedMail, until leaseEnds: ContinuousClock.Instant, logger: Logger) async {
        let database = self.database
        let id = mail.message.id
        await Task {
            var warned = false
            while true {
                do {
                    try await database.query(
                        "UPDATE mail_outbox SET sent_at = now(), failed_at = NULL, attempts = attempts + 1, claim_id = NULL WHERE id = \(id) AND sent_at IS NULL",
                        logger: logger
                    )
                    if warned { logger.notice("sent mail recorded after all") }
                    return
                } catch {
                    let pause = Duration.milliseconds(500)
                    guard ContinuousClock.now + pause < leaseEnds else {
                        logger.error(
                            "mail sent but not recorded; it will be sent again when its lease ends",
                            metadata: ["error": "\(String(reflecting: error))"]
                        )
                        return
                    }
                    if !warned { logger.warning("mail sent but not yet recorded; retrying", metadata: ["error": "\(String(reflecting: error))"]) }
                    warned = true
                    try? await Task.sleep(for: pause)
                }
            }
        }.value
    }

    private func recordFailure(of mail: ClaimedMail, claim: UUID, error: any Error, logger: Logger) async {
        let failure = error as? MailTransportError ?? MailTransportError(reason: .other, isPermanent: false, detail: String(describing: error))
        let attempts = mail.attempts + 1
        let delay = configuration.retry.delay(afterFailures: attempts)
        let message = String(failure.detail.prefix(1_000))
        metrics.recordFailure(failure.reason)
        var metadata: Logger.Metadata = ["error": "\(message)", "reason": "\(failure.reason.rawValue)", "attempts": "\(attempts)"]
        if failure.isPermanent {
            metadata["mail_to"] = "\(mail.message.to)"
            logger.error("mail refused for good; marked failed and never tried again", metadata: metadata)
        } else {
            metadata["retry_in"] = "\(delay)"
            if [.authentication, .refused, .tls, .other].contains(failure.reason) {
                logger.error("mail cannot be sent until the relay or this service's mail settings are fixed; retrying", metadata: metadata)
            } else if attempts == 1 {
                logger.warning("mail not sent; retrying with backoff", metadata: metadata)
            } else {
                logger.debug("mail not sent again", metadata: metadata)
            }
        }
        do {
            try await database.query(
                """
                UPDATE mail_outbox
                SET attempts = attempts + 1, last_error = \(message), claim_id = NULL,
                    failed_at = CASE WHEN \(failure.isPermanent) THEN now() END,
                    next_attempt_at = now() + \(delay.inSeconds) * interval '1 second'
                WHERE id = \(mail.message.id) AND claim_id = \(claim)
                """,
                logger: logger
            )
        } catch {
            logger.warning("could not record a failed send; retried when its lease ends", metadata: ["error": "\(String(reflecting: error))"])
        }
    }

    /// Deletes up to a chunk of sent or failed mail written more than `age` ago; returns how many.
    /// Mail still to send is kept however old.
    package func purgeFinished(olderThan age: Duration) async throws -> Int {
        try await database.query(
            """
            DELETE FROM mail_outbox WHERE id IN (
                SELECT id FROM mail_outbox
                WHERE created_at < now() - \(age.inSeconds) * interval '1 second' AND (sent_at IS NOT NULL OR failed_at IS NOT NULL)
                ORDER BY created_at
                LIMIT \(QueueWorkerLoop.purgeChunk)
            )
            RETURNING id
            """,
            logger: logger
        ).count
    }
}

/// A mail this sender holds the lease of.
struct ClaimedMail: Sendable {
    var message: MailMessage
    /// Attempts so far (all failed, or it would not be due).
    var attempts: Int
    var requestID: String?

    init(_ row: (UUID, String, String, String, String?, Date, Int, String?)) {
        let (id, recipient, subject, text, html, createdAt, attempts, requestID) = row
        message = MailMessage(id: id, to: recipient, subject: subject, textBody: text, htmlBody: html, date: createdAt)
        self.attempts = attempts
        self.requestID = requestID
    }
}
