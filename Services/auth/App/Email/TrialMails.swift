import Foundation
import InternalAPI
import Logging
import PostgresNIO
import ServiceCore

/// billing's trial events, applied once each by `EventReceiver`: every owner of the tenant gets a
/// mail through the mail outbox, written in the transaction that records the event, so a mail is
/// queued exactly when the event counts as applied (and never twice for one event).
enum TrialMails {
    static func handlers(appBaseURL: String) -> [EventType: EventReceiver.Handler] {
        let billingPage = "\(appBaseURL)/billing"
        let ending: EventReceiver.Handler = { event, connection, logger in
            let trial = try event.decodePayload(as: TrialEnding.self)
            try await mailOwners(of: trial.tenantId, on: connection, logger: logger) { owner, tenant in
                MailMessage(
                    to: owner.email, subject: "Your \(tenant) trial ends on \(day(trial.trialEndsAt))",
                    textBody: """
                        Hello\(owner.name.map { " \($0)" } ?? ""),

                        the free trial of your \(tenant) account ends on \(day(trial.trialEndsAt)) (UTC). After that your assistant
                        stops answering until a plan is paid. Choose a plan here:

                        \(billingPage)
                        """
                )
            }
        }
        let ended: EventReceiver.Handler = { event, connection, logger in
            let trial = try event.decodePayload(as: TrialEnded.self)
            try await mailOwners(of: trial.tenantId, on: connection, logger: logger) { owner, tenant in
                MailMessage(
                    to: owner.email, subject: "Your \(tenant) trial has ended",
                    textBody: """
                        Hello\(owner.name.map { " \($0)" } ?? ""),

                        the free trial of your \(tenant) account ended on \(day(trial.trialEndsAt)) (UTC), so your assistant no
                        longer answers. Your configuration and knowledge base are kept; pay for a plan to turn it back on:

                        \(billingPage)
                        """
                )
            }
        }
        return [TrialEnding.type: ending, TrialEnded.type: ended]
    }

    /// billing is the only sender of its events.
    static let senders: [EventType: String] = [TrialEnding.type: "billing", TrialEnded.type: "billing"]

    struct Owner {
        var email: String
        var name: String?
    }

    private static func mailOwners(
        of tenantID: UUID, on connection: PostgresConnection, logger: Logger, _ message: (Owner, String) -> MailMessage
    ) async throws {
        let rows = try await connection.query(
            """
            SELECT u.email, u.full_name, t.name FROM users u JOIN tenant_directory t ON t.tenant_id = u.tenant_id
            WHERE u.tenant_id = \(tenantID) AND u.role = 'owner' AND u.deleted_at IS NULL ORDER BY u.created_at
            """,
            logger: logger
        ).collect()
        if rows.isEmpty { logger.notice("trial event for a tenant without owners here; no mail", metadata: ["tenant_id": "\(tenantID)"]) }
        for row in rows {
            let (email, name, tenant) = try row.decode((String, String?, String).self)
            try await MailOutbox.enqueue(message(Owner(email: email, name: name), tenant), on: connection, logger: logger)
        }
    }

    private static func day(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(timeZone: TimeZone(identifier: "UTC")!).year().month().day())
    }
}
