import Foundation
import Logging
import ServiceCore
import TestSupport
import Testing

/// The transports and their configuration: what reaches a real SMTP server (aiosmtpd) through the
/// system libcurl, how its refusals are classified, and what the log transport writes.
extension MailTests {
    // MARK: - What arrives

    @Test func messageArrivesWellFormedWithUTF8SubjectBodyAndHTML() async throws {
        let server = try SMTPTestServer()
        try await server.start()
        defer { server.stop() }
        let transport = SMTPMailTransport(
            configuration: .init(host: "127.0.0.1", port: server.port, security: .none, from: MailHarness.from, timeout: .seconds(5))
        )
        let link = "https://app.acme.test/verify?token=" + String(repeating: "0123456789abcdef", count: 6) + "&next=%2Fwelcome"
        let subject = "Bestätigen Sie Ihre Adresse ✅ — 確認してください, this subject is long enough to be folded onto several lines"
        let text = "Hallo Zoë,\n\nbitte bestätigen: \(link)\n.a line that starts with a dot\ntrailing space \n= sign and tab\tend\n"
        let html = "<p>Hallo Zoë, <a href=\"\(link)\">bestätigen</a> ✅</p>"
        let rich = MailMessage(to: "zoe@example.com", subject: subject, textBody: text, htmlBody: html)
        let plain = MailMessage(to: "ada@example.com", subject: "Reset your password", textBody: "Reset: \(link)\r\nThanks")
        try await transport.send(rich, logger: MailHarness.logger)
        try await transport.send(plain, logger: MailHarness.logger)

        let accepted = try server.accepted()
        try #require(accepted.count == 2)
        let (first, second) = (accepted[0], accepted[1])
        let parsed = try #require(first.parsed)
        // Python's email parser, an independent MIME decoder, reads back exactly what was sent.
        #expect(parsed.subject == subject)
        #expect(parsed.text == text)
        #expect(parsed.html == html)
        #expect(parsed.contentType == "multipart/alternative")
        #expect(parsed.from == "Acme Support <no-reply@acme.test>")
        #expect(parsed.to == "zoe@example.com")
        #expect(parsed.messageId == "<\(rich.id.uuidString.lowercased())@acme.test>")
        #expect(parsed.defects.isEmpty)
        #expect(first.mailFrom == "no-reply@acme.test")
        #expect(first.rcptTos == ["zoe@example.com"])

        let raw = try #require(first.data)
        // CRLF only, every line within the recommended 78 characters, and nothing but ASCII on the wire.
        #expect(!raw.replacingOccurrences(of: "\r\n", with: "").contains("\n"))
        #expect(raw.components(separatedBy: "\r\n").allSatisfy { $0.utf8.count <= 78 })
        #expect(raw.unicodeScalars.allSatisfy { $0.isASCII })
        let headers = first.headers
        #expect(headers["mime-version"] == "1.0")
        #expect(headers["subject"]?.hasPrefix("=?UTF-8?B?") == true)
        #expect(headers["auto-submitted"] == "auto-generated")
        #expect(headers["content-type"]?.hasPrefix("multipart/alternative; boundary=") == true)
        let date = try #require(headers["date"])
        #expect(date.hasSuffix(" +0000"))
        #expect(abs(try #require(Self.rfc5322Formatter.date(from: date)).timeIntervalSince(rich.date)) < 1)
        #expect(raw.contains("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable"))
        #expect(raw.contains("Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable"))

        let plainParsed = try #require(second.parsed)
        #expect(plainParsed.contentType == "text/plain")
        #expect(plainParsed.subject == "Reset your password")
        #expect(plainParsed.text == "Reset: \(link)\nThanks\n")
        #expect(plainParsed.html == nil)
        #expect(plainParsed.defects.isEmpty)
        #expect(second.headers["subject"] == "Reset your password")
        #expect(second.headers["content-transfer-encoding"] == "quoted-printable")
    }

    static let rfc5322Formatter: DateFormatter = {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss Z"
        return formatter
    }()

    // MARK: - Transports

    @Test func smtpRefusalsAndOutagesAreClassified() async throws {
        var options = SMTPTestServer.Options()
        options.permanentRecipients = ["gone@example.com"]
        options.transientRecipients = ["busy@example.com"]
        options.transientFirst = 1
        options.permanentFirst = 1
        let server = try SMTPTestServer(options: options)
        try await server.start()
        defer { server.stop() }
        func transport(port: Int, timeout: Duration = .seconds(2), security: SMTPMailTransport.Security = .none) -> SMTPMailTransport {
            SMTPMailTransport(configuration: .init(host: "127.0.0.1", port: port, security: security, from: MailHarness.from, timeout: timeout))
        }
        func failure(_ message: MailMessage, via transport: SMTPMailTransport) async -> MailTransportError? {
            do {
                try await transport.send(message, logger: MailHarness.logger)
                return nil
            } catch {
                return error as? MailTransportError
            }
        }
        let smtp = transport(port: server.port)
        // The text of the first message is answered 451, of the second 554: both after DATA.
        let deferred = await failure(MailHarness.verification(), via: smtp)
        #expect(deferred?.isPermanent == false && deferred?.reason == .deferred)
        #expect(deferred?.detail.contains("451 4.3.0") == true)
        let refusedText = await failure(MailHarness.verification(), via: smtp)
        #expect(refusedText?.isPermanent == true && refusedText?.reason == .rejected)
        #expect(refusedText?.detail.contains("554 5.6.0") == true)
        let gone = await failure(MailHarness.verification(to: "gone@example.com"), via: smtp)
        #expect(gone?.isPermanent == true && gone?.reason == .rejected)
        let busy = await failure(MailHarness.verification(to: "busy@example.com"), via: smtp)
        #expect(busy?.isPermanent == false && busy?.reason == .deferred)
        #expect(await failure(MailHarness.verification(), via: smtp) == nil)

        let nobody = try TestPorts.next()
        let unreachable = await failure(MailHarness.verification(), via: transport(port: nobody))
        #expect(unreachable?.isPermanent == false && unreachable?.reason == .unreachable)

        let silent = try SilentListener()
        let started = ContinuousClock.now
        let hung = await failure(MailHarness.verification(), via: transport(port: silent.port, timeout: .seconds(1)))
        #expect(hung?.isPermanent == false && hung?.reason == .timeout)
        #expect(ContinuousClock.now - started < .seconds(3))

        // STARTTLS required, and this server does not offer it: nothing is sent in clear.
        let clear = await failure(MailHarness.verification(), via: transport(port: server.port, security: .starttls))
        #expect(clear?.isPermanent == false && clear?.reason == .tls)
        #expect(try server.accepted().count == 1)
    }

    @Test func smtpOverStartTLSAndImplicitTLSWithAuthentication() async throws {
        let certificate = try TestCertificate()
        for (tls, security) in [(SMTPTestServer.TLS.starttls(certificate), SMTPMailTransport.Security.starttls), (.implicit(certificate), .tls)] {
            var options = SMTPTestServer.Options()
            options.tls = tls
            options.credentials = ("mailer", "s3cret-pass")
            let server = try SMTPTestServer(options: options)
            try await server.start()
            defer { server.stop() }
            func transport(password: String, trusting path: String? = certificate.certificatePath) -> SMTPMailTransport {
                SMTPMailTransport(
                    configuration: .init(
                        host: "127.0.0.1", port: server.port, security: security, username: "mailer", password: password, from: MailHarness.from,
                        timeout: .seconds(5), caBundlePath: path
                    )
                )
            }
            let mail = MailHarness.verification()
            try await transport(password: "s3cret-pass").send(mail, logger: MailHarness.logger)
            let accepted = try server.accepted()
            #expect(accepted.count == 1)
            #expect(accepted.first?.tls == true)
            #expect(accepted.first?.login == "mailer")
            #expect(accepted.first?.parsed?.text == mail.textBody)

            do {
                try await transport(password: "wrong").send(MailHarness.verification(), logger: MailHarness.logger)
                Issue.record("sent with a wrong password")
            } catch let error as MailTransportError {
                #expect(!error.isPermanent && error.reason == .authentication, "\(error)")
                #expect(!error.detail.contains("wrong"))
            }
            // A server whose certificate is not trusted gets nothing.
            do {
                try await transport(password: "s3cret-pass", trusting: nil).send(MailHarness.verification(), logger: MailHarness.logger)
                Issue.record("sent to an untrusted server")
            } catch let error as MailTransportError {
                #expect(!error.isPermanent && error.reason == .tls, "\(error)")
            }
            #expect(try server.accepted().count == 1)
        }
    }

    @Test func logTransportLogsRecipientSubjectAndBody() async throws {
        let recorder = LogRecorder()
        let mail = MailHarness.verification()
        try await LogMailTransport(from: MailHarness.from).send(mail, logger: recorder.logger())
        let record = try #require(recorder.logged.first)
        #expect(recorder.logged.count == 1)
        #expect(record.level == .notice)
        #expect(record.metadata["mail_to"] == mail.to)
        #expect(record.metadata["mail_subject"] == mail.subject)
        #expect(record.metadata["mail_body"] == mail.textBody)
        #expect(record.metadata["mail_body"]?.contains("https://app.acme.test/verify?token=") == true)
        #expect(record.metadata["mail_id"] == mail.id.uuidString.lowercased())

        let injected = MailMessage(to: "ada@example.com", subject: "Hi\r\nBcc: eve@example.com", textBody: "x")
        await #expect(throws: MailTransportError.self) { try await LogMailTransport(from: MailHarness.from).send(injected, logger: recorder.logger()) }
        #expect(recorder.logged.count == 1)
    }

    // MARK: - Configuration

    @Test func configurationChoosesTheTransportAndRefusesBadCombinations() throws {
        let defaults = try MailConfig(settings: .variables([:]))
        #expect(defaults.from == (try MailAddress(address: "no-reply@localhost")))
        #expect(defaults.makeTransport() is LogMailTransport)

        let smtp = try MailConfig(settings: .variables([
            "MAIL_TRANSPORT": "smtp", "MAIL_FROM": "Acme Support <support@acme.test>", "SMTP_HOST": "smtp.acme.test",
            "SMTP_USERNAME": "mailer", "SMTP_PASSWORD": "secret", "SMTP_TIMEOUT_SECONDS": "5",
        ]))
        guard case .smtp(let configuration) = smtp.transport else {
            Issue.record("not smtp")
            return
        }
        #expect(smtp.from == (try MailAddress(address: "support@acme.test", displayName: "Acme Support")))
        #expect(configuration.host == "smtp.acme.test" && configuration.port == 587 && configuration.security == .starttls)
        #expect(configuration.username == "mailer" && configuration.password == "secret" && configuration.timeout == .seconds(5))
        #expect(smtp.makeTransport() is SMTPMailTransport)
        #expect(!"\(configuration)".contains("secret"))

        let implicit = try MailConfig(settings: .variables(["MAIL_TRANSPORT": "smtp", "SMTP_HOST": "smtp.acme.test", "SMTP_SECURITY": "tls"]))
        if case .smtp(let configuration) = implicit.transport { #expect(configuration.port == 465) } else { Issue.record("not smtp") }

        let refused: [([String: String], String)] = [
            (["MAIL_TRANSPORT": "smtp"], "SMTP_HOST"),
            (["MAIL_TRANSPORT": "carrier-pigeon"], "MAIL_TRANSPORT"),
            (["SMTP_HOST": "smtp.acme.test"], "MAIL_TRANSPORT"),
            (["MAIL_FROM": "no-reply@acme.test\r\nBcc: eve@example.com"], "MAIL_FROM"),
            (["MAIL_TRANSPORT": "smtp", "SMTP_HOST": "smtp.acme.test", "SMTP_SECURITY": "ssl"], "SMTP_SECURITY"),
            (["MAIL_TRANSPORT": "smtp", "SMTP_HOST": "smtp.acme.test", "SMTP_PORT": "0"], "SMTP_PORT"),
            (["MAIL_TRANSPORT": "smtp", "SMTP_HOST": "smtp.acme.test", "SMTP_USERNAME": "mailer"], "SMTP_PASSWORD"),
            (["MAIL_TRANSPORT": "smtp", "SMTP_HOST": "smtp.acme.test", "SMTP_TIMEOUT_SECONDS": "600"], "SMTP_TIMEOUT_SECONDS"),
            (
                ["MAIL_TRANSPORT": "smtp", "SMTP_HOST": "smtp.acme.test", "SMTP_SECURITY": "none", "SMTP_USERNAME": "u", "SMTP_PASSWORD": "p"],
                "SMTP_SECURITY"
            ),
        ]
        for (variables, named) in refused {
            #expect(throws: ConfigurationError.self, "\(variables)") { try MailConfig(settings: .variables(variables)) }
            do {
                _ = try MailConfig(settings: .variables(variables))
            } catch let error as ConfigurationError {
                #expect(error.variable == named, "\(variables): \(error)")
            }
        }
        // Local development may skip TLS on this host.
        _ = try MailConfig(settings: .variables([
            "MAIL_TRANSPORT": "smtp", "SMTP_HOST": "localhost", "SMTP_SECURITY": "none", "SMTP_USERNAME": "u", "SMTP_PASSWORD": "p",
        ]))
    }
}
