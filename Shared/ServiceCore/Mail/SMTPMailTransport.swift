import CCurl
import Logging
import NIOPosix

/// Sends mail to an SMTP relay (a provider's submission port, or a local relay) with the system
/// libcurl, which brings STARTTLS, implicit TLS, certificate checks against the system's trust
/// store and the usual AUTH mechanisms. The conversation blocks a thread for up to `timeout`, so it
/// runs on a `NIOThreadPool` (the shared one by default), never on an event loop or the
/// cooperative pool; `MailSender` bounds how many run at once.
package struct SMTPMailTransport: MailTransport {
    package enum Security: String, Sendable, CaseIterable {
        /// Plain connection upgraded with STARTTLS, which must succeed: a relay that does not offer
        /// it gets nothing, not even our credentials (submission port 587).
        case starttls
        /// TLS from the first byte (port 465).
        case tls
        /// No encryption: only for a relay on this host or a local test server.
        case none
    }

    package struct Configuration: Sendable, CustomStringConvertible {
        package var host: String
        package var port: Int
        package var security: Security
        package var username: String?
        package var password: String?
        package var from: MailAddress
        /// The whole conversation, connecting included.
        package var timeout: Duration
        /// PEM certificates to trust instead of the system's (a relay with a private CA, tests).
        package var caBundlePath: String?

        package init(
            host: String, port: Int, security: Security, username: String? = nil, password: String? = nil, from: MailAddress,
            timeout: Duration = .seconds(10), caBundlePath: String? = nil
        ) {
            self.host = host
            self.port = port
            self.security = security
            self.username = username
            self.password = password
            self.from = from
            self.timeout = timeout
            self.caBundlePath = caBundlePath
        }

        /// Everything but the password, so that logging a configuration cannot leak it.
        package var description: String {
            "smtp \(security.rawValue) \(host):\(port) user=\(username ?? "none") from=\(from) timeout=\(timeout)"
        }

        var url: String {
            let host = self.host.contains(":") ? "[\(self.host)]" : self.host
            return "\(security == .tls ? "smtps" : "smtp")://\(host):\(port)"
        }
    }

    package let configuration: Configuration
    let threadPool: NIOThreadPool

    package init(configuration: Configuration, threadPool: NIOThreadPool = .singleton) {
        self.configuration = configuration
        self.threadPool = threadPool
    }

    package var sendTimeout: Duration { configuration.timeout }

    package func send(_ message: MailMessage, logger: Logger) async throws {
        try message.validate()
        let content = MIMEMessage.render(message, from: configuration.from)
        let configuration = self.configuration
        // Not cancellable once started: a conversation cut short after the message text went out
        // could leave the mail sent yet recorded as not sent. It ends within the timeout anyway.
        let outcome = try await threadPool.runIfActive {
            CurlSMTPExchange.send(content, to: message.to, configuration: configuration)
        }
        if let error = Self.classify(outcome, server: "\(configuration.host):\(configuration.port)") { throw error }
        logger.debug("mail accepted by the SMTP relay", metadata: ["smtp_reply": "\(outcome.lastReply ?? "")"])
    }

    /// Nil when the relay accepted the mail. Only a 5xx answer to this mail's recipient or text is
    /// permanent: a 5xx anywhere else (greeting, EHLO, AUTH, MAIL FROM) is the relay refusing us or
    /// our sender, which a configuration change fixes, and every other failure passes with time.
    static func classify(_ outcome: CurlSMTPOutcome, server: String) -> MailTransportError? {
        guard !outcome.succeeded else { return nil }
        let code = outcome.code
        let replyCode = Int(outcome.lastReply?.prefix(3) ?? "") ?? outcome.replyCode
        let detail: String
        if replyCode >= 400, let reply = outcome.lastReply {
            detail = "\(server) answered \(outcome.stage.rawValue) with: \(reply)"
        } else {
            detail = "\(server): \(outcome.curlMessage) (curl \(code.rawValue), during \(outcome.stage.rawValue))"
        }
        let reason: MailFailureReason
        switch code {
        case _ where (500...599).contains(replyCode):
            switch outcome.stage {
            case .recipient, .data, .content: return MailTransportError(reason: .rejected, isPermanent: true, detail: detail)
            case .authentication: reason = .authentication
            case .startTLS: reason = .tls
            case .connection, .hello, .sender: reason = .refused
            }
        case _ where (400...499).contains(replyCode):
            reason = .deferred
        case CURLE_LOGIN_DENIED, CURLE_AUTH_ERROR:
            reason = .authentication
        case CURLE_USE_SSL_FAILED, CURLE_SSL_CONNECT_ERROR, CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CERTPROBLEM,
            CURLE_SSL_CIPHER, CURLE_SSL_CACERT_BADFILE, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_PINNEDPUBKEYNOTMATCH:
            reason = .tls
        case CURLE_OPERATION_TIMEDOUT:
            reason = .timeout
        case CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY, CURLE_SEND_ERROR, CURLE_RECV_ERROR,
            CURLE_GOT_NOTHING:
            reason = .unreachable
        default:
            reason = .other
        }
        return MailTransportError(reason: reason, isPermanent: false, detail: detail)
    }
}
