import Logging

/// Hands a mail to whatever delivers it further: an SMTP relay, or the log in development.
package protocol MailTransport: Sendable {
    /// Returns once the next hop has taken responsibility for `message`. Throws
    /// `MailTransportError`; anything else thrown counts as transient (`other`).
    func send(_ message: MailMessage, logger: Logger) async throws

    /// The longest one `send` can take; `MailSender`'s lease must outlast a batch of them.
    var sendTimeout: Duration { get }
}

extension MailTransport {
    package var sendTimeout: Duration { .seconds(30) }
}

/// Why an attempt failed, as counted (`mail_send_failures_total{reason}`) and logged: few values,
/// so label cardinality stays bounded.
package enum MailFailureReason: String, CaseIterable, Sendable {
    /// No connection, or it broke: the relay is down, restarting or unreachable.
    case unreachable
    case timeout
    /// TLS could not be set up (STARTTLS refused or unavailable, certificate not trusted).
    case tls
    /// The relay refused our credentials: a configuration problem, retried until it is fixed.
    case authentication
    /// A 4xx reply: the relay cannot take the mail now (greylisting, rate limits, a full queue).
    case deferred
    /// A 5xx reply not about this mail (greeting, EHLO, MAIL FROM): the relay refuses our sender
    /// or us, which a configuration change fixes, so it is retried.
    case refused
    /// A 5xx reply to this mail's recipient or content: permanent.
    case rejected
    /// The mail itself cannot be written (a header-injection attempt, a malformed address): permanent.
    case invalidMessage = "invalid_message"
    /// Anything else.
    case other
}

/// A failed send, classified: a transient one is tried again later with backoff, a permanent one
/// marks the mail failed and is never tried again.
package struct MailTransportError: Error, CustomStringConvertible, Sendable {
    package var reason: MailFailureReason
    package var isPermanent: Bool
    /// What happened, for `last_error` and the log; never credentials.
    package var detail: String

    package init(reason: MailFailureReason, isPermanent: Bool, detail: String) {
        self.reason = reason
        self.isPermanent = isPermanent
        self.detail = detail
    }

    package static func invalidMessage(_ detail: String) -> MailTransportError {
        MailTransportError(reason: .invalidMessage, isPermanent: true, detail: detail)
    }

    package var description: String { detail }
}
