/// Which mail transport a service uses and who its mail comes from, read once at start.
package struct MailConfig: Sendable {
    package enum Transport: Sendable {
        /// Logs each mail, link included; sends nothing (development).
        case log
        case smtp(SMTPMailTransport.Configuration)
    }

    package var from: MailAddress
    package var transport: Transport

    package init(from: MailAddress, transport: Transport) {
        self.from = from
        self.transport = transport
    }

    /// `MAIL_TRANSPORT` (`log`, the default, or `smtp`), `MAIL_FROM` (`no-reply@localhost`), and for
    /// SMTP `SMTP_HOST` (required), `SMTP_PORT` (587; 465 with `tls`), `SMTP_SECURITY` (`starttls`,
    /// `tls` or `none`), `SMTP_USERNAME` and `SMTP_PASSWORD` (both or neither), `SMTP_TIMEOUT_SECONDS` (10).
    package init(settings: Settings) throws {
        let rawFrom = settings.string("MAIL_FROM", default: "no-reply@localhost")
        do {
            from = try MailAddress(parsing: rawFrom)
        } catch {
            throw ConfigurationError(variable: "MAIL_FROM", problem: "must be an address or 'Name <address>', got '\(rawFrom)'")
        }
        switch settings.string("MAIL_TRANSPORT", default: "log").lowercased() {
        case "log":
            // Mail that should go out must not end up only in a log because one variable was forgotten.
            if settings.optionalString("SMTP_HOST") != nil {
                throw ConfigurationError(
                    variable: "MAIL_TRANSPORT",
                    problem: "is log (the default), so mail is only logged, yet SMTP_HOST is set: set MAIL_TRANSPORT=smtp, or unset SMTP_HOST"
                )
            }
            transport = .log
        case "smtp":
            transport = .smtp(try Self.smtp(settings, from: from))
        case let other:
            throw ConfigurationError(variable: "MAIL_TRANSPORT", problem: "must be log or smtp, got '\(other)'")
        }
    }

    private static func smtp(_ settings: Settings, from: MailAddress) throws -> SMTPMailTransport.Configuration {
        guard let host = settings.optionalString("SMTP_HOST") else {
            throw ConfigurationError(variable: "SMTP_HOST", problem: "is required when MAIL_TRANSPORT=smtp")
        }
        let rawSecurity = settings.string("SMTP_SECURITY", default: "starttls").lowercased()
        guard let security = SMTPMailTransport.Security(rawValue: rawSecurity) else {
            throw ConfigurationError(variable: "SMTP_SECURITY", problem: "must be starttls, tls or none, got '\(rawSecurity)'")
        }
        let port = try settings.int("SMTP_PORT", default: security == .tls ? 465 : 587, range: 1...65535)
        let username = settings.optionalString("SMTP_USERNAME")
        let password = settings.optionalString("SMTP_PASSWORD", isSecret: true)
        if (username == nil) != (password == nil) {
            throw ConfigurationError(variable: username == nil ? "SMTP_USERNAME" : "SMTP_PASSWORD", problem: "is required when the other of SMTP_USERNAME and SMTP_PASSWORD is set")
        }
        let loopback = ["localhost", "127.0.0.1", "::1"].contains(host.lowercased())
        if security == .none, username != nil, !loopback {
            throw ConfigurationError(
                variable: "SMTP_SECURITY",
                problem: "is none, which would send SMTP_PASSWORD in clear to \(host): use starttls or tls"
            )
        }
        let timeout = try settings.int("SMTP_TIMEOUT_SECONDS", default: 10, range: 1...60)
        return SMTPMailTransport.Configuration(
            host: host, port: port, security: security, username: username, password: password, from: from, timeout: .seconds(timeout)
        )
    }

    /// The transport this configuration names.
    package func makeTransport() -> any MailTransport {
        switch transport {
        case .log: LogMailTransport(from: from)
        case .smtp(let configuration): SMTPMailTransport(configuration: configuration)
        }
    }
}
