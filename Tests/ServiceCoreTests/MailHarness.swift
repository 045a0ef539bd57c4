import Foundation
import Logging
import PostgresNIO
import ServiceCore
import Synchronization
import TestSupport
import Testing

/// A service's database with the mail outbox (and a `users` table standing for its own changes),
/// a real SMTP server (aiosmtpd), and senders to taste.
struct MailHarness: Sendable {
    static let logger: Logger = {
        var logger = Logger(label: "mail-test")
        logger.logLevel = .critical
        return logger
    }()
    static let from = try! MailAddress(address: "no-reply@acme.test", displayName: "Acme Support")

    let database: Database
    let databaseConfig: DatabaseConfig
    let server: SMTPTestServer

    /// Runs `body` with the outbox migrated and the server started when `serverUp`.
    static func with<T: Sendable>(
        server options: SMTPTestServer.Options = SMTPTestServer.Options(),
        serverUp: Bool = true,
        _ body: (MailHarness) async throws -> T
    ) async throws -> T {
        let config = try await TestPostgres.freshDatabase("mail")
        let server = try SMTPTestServer(options: options)
        defer { server.stop() }
        if serverUp { try await server.start() }
        return try await TestPostgres.withDatabase(config) { database in
            try await MigrationRunner([
                Migration(1, "create_mail_outbox", MailSchema.statements),
                Migration(2, "create_users", ["CREATE TABLE users (id uuid PRIMARY KEY, email text NOT NULL)"]),
            ]).run(on: database.client, logger: logger)
            return try await body(MailHarness(database: database, databaseConfig: config, server: server))
        }
    }

    /// Plain SMTP to the test server, with a timeout that keeps tests short.
    var transport: SMTPMailTransport {
        SMTPMailTransport(
            configuration: .init(host: "127.0.0.1", port: server.port, security: .none, from: Self.from, timeout: .seconds(2))
        )
    }

    /// Small waits so that retries happen within a test's time; the lease outlives a batch at the 2 s timeout.
    static func configuration(pollInterval: Duration = .milliseconds(100), batchSize: Int = 4) -> MailSender.Configuration {
        MailSender.Configuration(
            pollInterval: pollInterval, batchSize: batchSize, retry: OutboxRetryPolicy(base: .milliseconds(50), cap: .milliseconds(200)),
            lease: .seconds(10), retention: MailSender.defaultConfiguration.retention
        )
    }

    func sender(
        _ configuration: MailSender.Configuration = MailHarness.configuration(),
        on database: Database? = nil,
        metrics: ServiceMetrics = ServiceMetrics()
    ) -> MailSender {
        MailSender(database: database ?? self.database, transport: transport, configuration: configuration, metrics: metrics, logger: Self.logger)
    }

    /// Signs up one user per message in one transaction, each with its mail, as a service would.
    @discardableResult
    func signUp(_ messages: [MailMessage], requestID: String? = nil) async throws -> [MailMessage] {
        var logger = Self.logger
        if let requestID { logger[metadataKey: RequestID.metadataKey] = .string(requestID) }
        try await database.transaction(logger: logger) { [logger] connection in
            for message in messages {
                try await connection.query("INSERT INTO users (id, email) VALUES (\(message.id), \(message.to))", logger: logger)
                try await MailOutbox.enqueue(message, on: connection, logger: logger)
            }
        }
        return messages
    }

    static func verification(to recipient: String = "ada@example.com") -> MailMessage {
        let token = UUID().uuidString.lowercased()
        return MailMessage(
            to: recipient, subject: "Confirm your email address",
            textBody: "Welcome!\n\nConfirm your address: https://app.acme.test/verify?token=\(token)\n"
        )
    }

    /// Each outbox row, by mail id.
    func rows() async throws -> [UUID: MailRow] {
        let rows = try await database.query(
            "SELECT id, attempts, sent_at IS NOT NULL, failed_at IS NOT NULL, claim_id IS NOT NULL, last_error, request_id FROM mail_outbox",
            logger: Self.logger
        )
        return Dictionary(uniqueKeysWithValues: try rows.decode((UUID, Int, Bool, Bool, Bool, String?, String?).self).map { row in
            (row.0, MailRow(attempts: row.1, sent: row.2, failed: row.3, claimed: row.4, lastError: row.5, requestID: row.6))
        })
    }

    func row(_ message: MailMessage) async throws -> MailRow? { try await rows()[message.id] }

    /// Accepted messages per mail id, read from their `Message-ID` as the server received it.
    func acceptedPerMail() throws -> [UUID: Int] {
        var counts: [UUID: Int] = [:]
        for answer in try server.accepted() {
            let messageID = answer.parsed?.messageId ?? ""
            if let id = UUID(uuidString: String(messageID.dropFirst().prefix(36))) { counts[id, default: 0] += 1 }
        }
        return counts
    }
}

struct MailRow: Equatable {
    var attempts: Int
    var sent: Bool
    var failed: Bool
    var claimed: Bool
    var lastError: String?
    var requestID: String?
}

/// Every log record of the loggers it made, for tests that check what was logged.
final class LogRecorder: Sendable {
    struct Record: Sendable {
        var level: Logger.Level
        var message: String
        var metadata: [String: String]
    }

    private let records = Mutex<[Record]>([])

    var logged: [Record] { records.withLock { $0 } }

    func logger() -> Logger {
        Logger(label: "recording") { _ in Handler(recorder: self) }
    }

    private struct Handler: LogHandler {
        let recorder: LogRecorder
        var metadata: Logger.Metadata = [:]
        var metadataProvider: Logger.MetadataProvider?
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let merged = metadata.merging(event.metadata ?? [:]) { _, new in new }.mapValues { "\($0)" }
            recorder.records.withLock { $0.append(Record(level: event.level, message: "\(event.message)", metadata: merged)) }
        }
    }
}
