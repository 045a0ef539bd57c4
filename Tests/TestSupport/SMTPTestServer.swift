#if canImport(Glibc)
import Glibc
#endif
import Foundation
import LocalPostgres
import Synchronization

/// A real SMTP server for the mail tests: `smtp_test_server.py` on aiosmtpd (PyPI), in a virtual
/// environment the tests make themselves under `.build/test-venv` the first time (and again when
/// the pinned version in `smtp_test_server.requirements.txt` changes), so `swift test` needs only
/// `python3` with `venv` on the machine. It writes every answer it gives to a message or recipient
/// to a JSON-lines file, which `answers()` reads back.
package final class SMTPTestServer: Sendable {
    package struct Options: Sendable {
        /// Answer the text of the first N messages 451 (try again later).
        package var transientFirst = 0
        /// Answer the text of the first N messages 554 (refused).
        package var permanentFirst = 0
        /// Answer RCPT TO 450 for these addresses.
        package var transientRecipients: [String] = []
        /// Answer RCPT TO 550 for these addresses.
        package var permanentRecipients: [String] = []
        /// Wait this long before answering a message's text, as a slow relay does.
        package var dataDelay: Duration = .zero
        package var tls: TLS?
        /// Require AUTH with this user name and password.
        package var credentials: (user: String, password: String)?

        package init() {}
    }

    package enum TLS: Sendable {
        /// Offer STARTTLS and require it before anything else.
        case starttls(TestCertificate)
        /// TLS from the first byte, as on port 465.
        case implicit(TestCertificate)
    }

    package let port: Int
    package let options: Options
    private let directory: String
    private let pid = Mutex<pid_t?>(nil)

    /// A server on a fresh port (or `port`), not started yet.
    package init(port: Int? = nil, options: Options = Options()) throws {
        self.port = try port ?? TestPorts.next()
        self.options = options
        self.directory = FileManager.default.temporaryDirectory.appendingPathComponent("smtp-test-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    private var answersPath: String { "\(directory)/answers.jsonl" }

    /// Starts the server (installing aiosmtpd first if needed) and returns once it listens.
    package func start() async throws {
        let python = try await Self.python.value
        let ready = "\(directory)/ready"
        try? FileManager.default.removeItem(atPath: ready)
        var arguments = [python, Self.script, "--port", String(port), "--out", answersPath, "--ready-file", ready]
        arguments += ["--transient-first", String(options.transientFirst), "--permanent-first", String(options.permanentFirst)]
        arguments += ["--data-delay", String(Double(options.dataDelay.components.seconds) + Double(options.dataDelay.components.attoseconds) / 1e18)]
        arguments += options.transientRecipients.flatMap { ["--transient-recipient", $0] }
        arguments += options.permanentRecipients.flatMap { ["--permanent-recipient", $0] }
        switch options.tls {
        case .starttls(let certificate)?: arguments += ["--starttls", "--tls-cert", certificate.certificatePath, "--tls-key", certificate.keyPath]
        case .implicit(let certificate)?: arguments += ["--implicit-tls", "--tls-cert", certificate.certificatePath, "--tls-key", certificate.keyPath]
        case nil: break
        }
        if let credentials = options.credentials { arguments += ["--auth", "\(credentials.user):\(credentials.password)"] }
        let child = try ChildProcess.spawn(arguments, outputPath: "\(directory)/server.log")
        pid.withLock { $0 = child }
        Cleanup.register { Glibc.kill(child, SIGKILL) }
        let deadline = ContinuousClock.now + .seconds(20)
        while !FileManager.default.fileExists(atPath: ready) {
            guard ContinuousClock.now < deadline else { throw FixtureError(description: "the SMTP test server did not start: \(log)") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Stops the server; the port refuses connections afterwards. What it recorded stays readable.
    package func stop() {
        guard let child = pid.withLock({ $0.take() }) else { return }
        Glibc.kill(child, SIGTERM)
        ChildProcess.wait(child)
    }

    package var log: String { (try? String(contentsOfFile: "\(directory)/server.log", encoding: .utf8)) ?? "" }

    /// Every answer given so far, in order.
    package func answers() throws -> [SMTPAnswer] {
        guard let text = try? String(contentsOfFile: answersPath, encoding: .utf8) else { return [] }
        return try text.split(separator: "\n").map { try JSONDecoder().decode(SMTPAnswer.self, from: Data($0.utf8)) }
    }

    /// The messages the server accepted, in order.
    package func accepted() throws -> [SMTPAnswer] { try answers().filter(\.isAcceptance) }

    // MARK: - The Python side

    private static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    private static let script = "\(root)/Tests/TestSupport/smtp_test_server.py"

    /// The virtual environment's interpreter, made once per test process.
    private static let python = Task<String, any Error> {
        try PythonEnvironment.interpreter(venv: ".build/test-venv", requirements: "Tests/TestSupport/smtp_test_server.requirements.txt")
    }
}

/// One answer of the SMTP test server, with the message it answered when it got that far.
package struct SMTPAnswer: Decodable, Sendable {
    package var reply: String
    /// `rcpt` or `data`.
    package var stage: String
    package var mailFrom: String?
    package var rcptTos: [String]
    /// The message as the server received it (dot-stuffing undone).
    package var data: String?
    /// What Python's email parser, an independent MIME decoder, read in it.
    package var parsed: ParsedMail?
    package var tls: Bool
    package var login: String?

    package struct ParsedMail: Decodable, Sendable, Equatable {
        package var subject: String
        package var from: String
        package var to: String
        package var date: String
        package var messageId: String
        package var contentType: String
        package var text: String?
        package var html: String?
        /// Malformations the parser noticed (names of `email.errors` classes).
        package var defects: [String]

        enum CodingKeys: String, CodingKey {
            case subject, from, to, date, text, html, defects
            case messageId = "message_id"
            case contentType = "content_type"
        }
    }

    enum CodingKeys: String, CodingKey {
        case reply, stage, data, parsed, tls, login
        case mailFrom = "mail_from"
        case rcptTos = "rcpt_tos"
    }

    package var isAcceptance: Bool { reply.hasPrefix("250") }

    /// The header section, unfolded, by lower-cased name (the last one wins).
    package var headers: [String: String] {
        let head = (data ?? "").components(separatedBy: "\r\n\r\n").first ?? ""
        var fields: [String: String] = [:]
        var lastName: String?
        for line in head.components(separatedBy: "\r\n") {
            if line.hasPrefix(" ") || line.hasPrefix("\t"), let name = lastName {
                fields[name, default: ""] += line
            } else if let colon = line.firstIndex(of: ":") {
                let name = line[..<colon].lowercased()
                fields[name] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                lastName = name
            }
        }
        return fields
    }
}

/// A self-signed certificate for 127.0.0.1 and localhost, made with the `openssl` command.
package struct TestCertificate: Sendable {
    package let certificatePath: String
    package let keyPath: String

    package init() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("test-cert-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        certificatePath = "\(directory)/cert.pem"
        keyPath = "\(directory)/key.pem"
        try ChildProcess.run([
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout", keyPath, "-out", certificatePath,
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ])
        Cleanup.register { try? FileManager.default.removeItem(atPath: directory) }
    }
}
