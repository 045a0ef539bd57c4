import Foundation
import Logging

/// The development transport (`MAIL_TRANSPORT=log`, the default): nothing leaves the process; the
/// mail is logged at `notice` with its text body, which carries the verification or reset link a
/// developer needs to follow. Never use it where the log is read by anyone who must not sign in as
/// the recipient.
package struct LogMailTransport: MailTransport {
    let from: MailAddress

    package init(from: MailAddress) {
        self.from = from
    }

    package var sendTimeout: Duration { .seconds(1) }

    package func send(_ message: MailMessage, logger: Logger) async throws {
        try message.validate()
        logger.notice(
            "mail not sent (MAIL_TRANSPORT=log)",
            metadata: [
                "mail_id": "\(message.id.uuidString.lowercased())",
                "mail_from": "\(from)",
                "mail_to": "\(message.to)",
                "mail_subject": "\(message.subject)",
                "mail_body": "\(message.textBody)",
            ]
        )
    }
}
