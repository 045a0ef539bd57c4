import Foundation
import Logging
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

/// The mail outbox and its transports end to end: real PostgreSQL, a real SMTP server (aiosmtpd),
/// the system libcurl between them.
@Suite("mail", .timeLimit(.minutes(1)))
struct MailTests {
    // MARK: - The outbox

    @Test func queuedMailIsSentOnceSoonAfterCommit() async throws {
        try await MailHarness.with { harness in
            let metrics = ServiceMetrics()
            // A poll interval far beyond the test: only the commit's notification can wake the sender.
            let sender = ServiceRunner([harness.sender(MailHarness.configuration(pollInterval: .seconds(60)), metrics: metrics)])
            try await Task.sleep(for: .milliseconds(200))
            let start = ContinuousClock.now
            let mail = try #require(try await harness.signUp([MailHarness.verification()], requestID: "req-mail-1").first)

            try await eventually("the mail is sent", timeout: .seconds(5)) { try await harness.row(mail)?.sent == true }
            #expect(ContinuousClock.now - start < .seconds(3))
            try await Task.sleep(for: .milliseconds(300))
            await sender.stop()

            #expect(try await harness.rows() == [mail.id: MailRow(attempts: 1, sent: true, failed: false, claimed: false, requestID: "req-mail-1")])
            #expect(try harness.acceptedPerMail() == [mail.id: 1])
            #expect(try harness.server.answers().count == 1)
            #expect(try harness.server.accepted().first?.parsed?.text == mail.textBody)
            #expect(metrics.sample("mail_sent_total") == 1)
        }
    }

    @Test func mailWaitsWhileTheServerIsDownAndIsSentOnceItIsUp() async throws {
        try await MailHarness.with(serverUp: false) { harness in
            let metrics = ServiceMetrics()
            let sender = ServiceRunner([harness.sender(metrics: metrics)])
            let mail = try #require(try await harness.signUp([MailHarness.verification()]).first)

            try await eventually("three attempts have failed") { try await harness.row(mail)?.attempts ?? 0 >= 3 }
            let waiting = try #require(try await harness.row(mail))
            #expect(!waiting.sent && !waiting.failed)
            #expect(waiting.lastError?.contains("Couldn't connect") == true || waiting.lastError?.contains("Failed to connect") == true)

            try await harness.server.start()
            try await eventually("the mail is sent") { try await harness.row(mail)?.sent == true }
            await sender.stop()

            let sent = try #require(try await harness.row(mail))
            #expect(sent.attempts >= 4)
            #expect(!sent.claimed && !sent.failed)
            #expect(try harness.acceptedPerMail() == [mail.id: 1])
            #expect(metrics.sample("mail_sent_total") == 1)
            #expect(metrics.sample(#"mail_send_failures_total{reason="unreachable"}"#) ?? 0 >= 3)
            #expect(metrics.sample("mail_outbox_pending") != nil)
        }
    }

    @Test func transientRefusalIsRetriedAndTheMailSentOnce() async throws {
        var options = SMTPTestServer.Options()
        options.transientFirst = 2
        try await MailHarness.with(server: options) { harness in
            let metrics = ServiceMetrics()
            let sender = ServiceRunner([harness.sender(metrics: metrics)])
            let mail = try #require(try await harness.signUp([MailHarness.verification()]).first)
            try await eventually("the mail is sent") { try await harness.row(mail)?.sent == true }
            await sender.stop()

            #expect(try harness.server.answers().map { String($0.reply.prefix(3)) } == ["451", "451", "250"])
            #expect(try harness.acceptedPerMail() == [mail.id: 1])
            let row = try #require(try await harness.row(mail))
            #expect(row.attempts == 3)
            #expect(row.lastError?.contains("451 4.3.0") == true)
            #expect(metrics.sample(#"mail_send_failures_total{reason="deferred"}"#) == 2)
        }
    }

    @Test func permanentRefusalMarksTheMailFailedAndItIsNeverRetried() async throws {
        var options = SMTPTestServer.Options()
        options.permanentRecipients = ["gone@example.com"]
        try await MailHarness.with(server: options) { harness in
            let metrics = ServiceMetrics()
            let sender = ServiceRunner([harness.sender(metrics: metrics)])
            let doomed = MailHarness.verification(to: "gone@example.com")
            let fine = MailHarness.verification(to: "ada@example.com")
            try await harness.signUp([doomed, fine])
            try await eventually("both have an outcome") {
                let rows = try await harness.rows()
                return rows[doomed.id]?.failed == true && rows[fine.id]?.sent == true
            }
            // Many retry intervals (50–200 ms): a retried mail would show up again by now.
            try await Task.sleep(for: .seconds(1))
            await sender.stop()

            let failed = try #require(try await harness.row(doomed))
            #expect(failed.attempts == 1 && !failed.sent && !failed.claimed)
            #expect(failed.lastError?.contains("550 5.1.1") == true)
            #expect(try harness.server.answers().filter { $0.rcptTos == ["gone@example.com"] }.map(\.reply).map { $0.prefix(3) } == ["550"])
            #expect(try harness.acceptedPerMail() == [fine.id: 1])
            #expect(metrics.sample(#"mail_send_failures_total{reason="rejected"}"#) == 1)
            #expect(try await harness.database.query(
                "SELECT count(*)::int FROM mail_outbox WHERE sent_at IS NULL AND failed_at IS NULL", logger: MailHarness.logger
            ).decode(Int.self).first == 0)
        }
    }

    @Test func twoSendersOnOneDatabaseSendEachOfFiftyMailsExactlyOnce() async throws {
        try await MailHarness.with { harness in
            let mails = (0..<50).map { MailHarness.verification(to: "user\($0)@example.com") }
            // Queued before the senders start, so both find a backlog and compete for it.
            for chunk in stride(from: 0, to: 50, by: 10) { try await harness.signUp(Array(mails[chunk..<chunk + 10])) }
            let (metricsA, metricsB) = (ServiceMetrics(), ServiceMetrics())
            try await TestPostgres.withDatabase(harness.databaseConfig) { second in
                let senders = ServiceRunner([harness.sender(metrics: metricsA), harness.sender(on: second, metrics: metricsB)])
                try await eventually("all 50 are sent", timeout: .seconds(30)) {
                    try await harness.rows().values.filter(\.sent).count == 50
                }
                try await Task.sleep(for: .milliseconds(300))
                await senders.stop()
            }
            #expect(notExactlyOnce(try harness.acceptedPerMail(), Set(mails.map(\.id))).isEmpty)
            #expect(try harness.server.answers().count == 50)
            let rows = try await harness.rows()
            #expect(rows.count == 50)
            #expect(rows.values.allSatisfy { $0 == MailRow(attempts: 1, sent: true, failed: false, claimed: false) })
            #expect((metricsA.sample("mail_sent_total") ?? 0) + (metricsB.sample("mail_sent_total") ?? 0) == 50)
        }
    }

    @Test func claimOfACrashedSenderComesBackWhenItsLeaseEnds() async throws {
        try await MailHarness.with { harness in
            let mail = try #require(try await harness.signUp([MailHarness.verification()]).first)
            // What a sender that died right after claiming leaves behind: its claim, and a lease 1.5 s ahead.
            try await harness.database.query(
                "UPDATE mail_outbox SET claim_id = \(UUID()), next_attempt_at = now() + interval '1.5 seconds' WHERE id = \(mail.id)",
                logger: MailHarness.logger
            )
            let start = ContinuousClock.now
            let successor = ServiceRunner([harness.sender()])
            try await eventually("the mail is sent") { try await harness.row(mail)?.sent == true }
            await successor.stop()
            #expect(ContinuousClock.now - start > .seconds(1))
            #expect(try harness.acceptedPerMail() == [mail.id: 1])
            #expect(try await harness.row(mail) == MailRow(attempts: 1, sent: true, failed: false, claimed: false))
        }
    }

    @Test func senderCancelledMidSendStillRecordsTheMailItSent() async throws {
        var options = SMTPTestServer.Options()
        options.dataDelay = .milliseconds(800)
        try await MailHarness.with(server: options) { harness in
            let mail = try #require(try await harness.signUp([MailHarness.verification()]).first)
            let sender = harness.sender()
            let running = Task { try await sender.run() }
            try await eventually("the mail is claimed") { try await harness.row(mail)?.claimed == true }
            // The relay is now deciding on the message text; the sender is cancelled meanwhile.
            try await Task.sleep(for: .milliseconds(300))
            running.cancel()
            _ = try? await running.value

            #expect(try harness.acceptedPerMail() == [mail.id: 1])
            #expect(try await harness.row(mail) == MailRow(attempts: 1, sent: true, failed: false, claimed: false))
            // So a successor finds nothing to send again.
            let successor = ServiceRunner([harness.sender()])
            try await Task.sleep(for: .milliseconds(500))
            await successor.stop()
            #expect(try harness.server.answers().count == 1)
        }
    }

    @Test func purgeRemovesOnlyOldSentAndFailedMail() async throws {
        try await MailHarness.with(serverUp: false) { harness in
            let (oldSent, oldFailed, oldPending, newSent) = (UUID(), UUID(), UUID(), UUID())
            for (id, age, state) in [(oldSent, "3 days", "sent_at"), (oldFailed, "3 days", "failed_at"), (oldPending, "3 days", nil), (newSent, "1 hour", "sent_at")] {
                try await harness.database.query(
                    PostgresQuery(
                        unsafeSQL: """
                            INSERT INTO mail_outbox (id, recipient, subject, text_body, created_at\(state.map { ", \($0)" } ?? ""))
                            VALUES ('\(id)', 'ada@example.com', 'Hi', 'x', now() - interval '\(age)'\(state == nil ? "" : ", now()"))
                            """
                    ),
                    logger: MailHarness.logger
                )
            }
            let sender = harness.sender()
            #expect(try await sender.purgeFinished(olderThan: MailSender.defaultConfiguration.retention) == 2)
            #expect(Set(try await harness.rows().keys) == [oldPending, newSent])
        }
    }

    @Test func mailOfARolledBackTransactionIsNeverSent() async throws {
        try await MailHarness.with { harness in
            let sender = ServiceRunner([harness.sender()])
            struct Abandoned: Error {}
            let doomed = MailHarness.verification(to: "never@example.com")
            await #expect(throws: Abandoned.self) {
                try await harness.database.transaction(logger: MailHarness.logger) { connection in
                    try await connection.query("INSERT INTO users (id, email) VALUES (\(doomed.id), \(doomed.to))", logger: MailHarness.logger)
                    try await MailOutbox.enqueue(doomed, on: connection, logger: MailHarness.logger)
                    throw Abandoned()
                }
            }
            // Once a later mail has gone out, the sender has certainly looked past the rolled-back one.
            let committed = try #require(try await harness.signUp([MailHarness.verification()]).first)
            try await eventually("the committed mail is sent") { try await harness.row(committed)?.sent == true }
            await sender.stop()

            #expect(try await harness.rows().keys.sorted() == [committed.id])
            #expect(try harness.acceptedPerMail() == [committed.id: 1])
            #expect(try harness.server.answers().allSatisfy { $0.rcptTos == [committed.to] })
        }
    }

    @Test func headerInjectionIsRefusedAndNeverSent() async throws {
        try await MailHarness.with { harness in
            let injections = [
                MailMessage(to: "ada@example.com", subject: "Hello\r\nBcc: everyone@example.com", textBody: "x"),
                MailMessage(to: "ada@example.com\r\nBcc: everyone@example.com", subject: "Hello", textBody: "x"),
                MailMessage(to: "ada@example.com, eve@example.com", subject: "Hello", textBody: "x"),
                MailMessage(to: "Ada <ada@example.com>", subject: "Hello", textBody: "x"),
                MailMessage(to: "ada@example.com", subject: "Hello\nX-Injected: yes", textBody: "x"),
            ]
            // Refused before anything is written: the caller's transaction fails.
            for message in injections {
                await #expect(throws: MailTransportError.self) { try await harness.signUp([message]) }
            }
            for message in injections {
                do {
                    try await harness.transport.send(message, logger: MailHarness.logger)
                    Issue.record("an injected message was sent")
                } catch let error as MailTransportError {
                    #expect(error.isPermanent && error.reason == .invalidMessage)
                }
            }
            #expect(try await harness.rows().isEmpty)

            // A row written by other means (an older release, by hand) is marked failed, not sent.
            let smuggled = UUID()
            try await harness.database.query(
                "INSERT INTO mail_outbox (id, recipient, subject, text_body) VALUES (\(smuggled), 'ada@example.com', \("Hi\r\nBcc: eve@example.com"), 'x')",
                logger: MailHarness.logger
            )
            let metrics = ServiceMetrics()
            let sender = ServiceRunner([harness.sender(metrics: metrics)])
            try await eventually("the smuggled mail is marked failed") { try await harness.rows()[smuggled]?.failed == true }
            await sender.stop()
            #expect(try await harness.rows()[smuggled]?.lastError?.contains("subject contains a line break") == true)
            #expect(metrics.sample(#"mail_send_failures_total{reason="invalid_message"}"#) == 1)
            #expect(try harness.server.answers().isEmpty)
        }
    }
}
