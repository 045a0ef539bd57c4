import Foundation
import Logging
import PostgresNIO
import ServiceCore

/// Times the builtin responder's retrieval for `suite chat-retrieval-time` (bench/chat.sh): the very
/// statement `PostgresKnowledgeRetriever` runs for a chat message, one at a time against a
/// database, through the same pool and decoding, and PostgreSQL's plan for it.
package enum RetrievalTiming {
    package struct Question: Sendable {
        package var tenantID: UUID
        package var message: String

        package init(tenantID: UUID, message: String) {
            self.tenantID = tenantID
            self.message = message
        }
    }

    package struct Result: Sendable {
        /// Seconds per search, in the order run (after one untimed pass over every question).
        package var seconds: [Double]
        /// Chunks each timed search found.
        package var found: [Int]
        /// `EXPLAIN (ANALYZE, BUFFERS)` of the statement for the first questions.
        package var plans: [String]
    }

    package static func run(databaseURL: String, questions: [Question], rounds: Int, explain: Int = 3, logger: Logger) async throws -> Result {
        let config = try DatabaseConfig(url: databaseURL, variable: "CHAT_DATABASE_URL", maxConnections: 2)
        let client = PostgresClient(configuration: config.clientConfiguration, backgroundLogger: logger)
        let monitor = DatabaseMonitor(database: config, logger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            group.addTask { try await monitor.run() }
            defer { group.cancelAll() }
            let database = Database(client: client, monitor: monitor)
            let retriever = PostgresKnowledgeRetriever(client: database)
            let limit = ChatExchange.retrievalLimit
            for question in questions {
                _ = try await retriever.search(tenantID: question.tenantID, query: question.message, limit: limit, logger: logger)
            }
            var result = Result(seconds: [], found: [], plans: [])
            let clock = ContinuousClock()
            for _ in 0..<rounds {
                for question in questions {
                    var found = 0
                    let elapsed = try await clock.measure {
                        found = try await retriever.search(tenantID: question.tenantID, query: question.message, limit: limit, logger: logger).count
                    }
                    result.seconds.append(Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
                    result.found.append(found)
                }
            }
            for question in questions.prefix(explain) {
                guard let statement = PostgresKnowledgeRetriever.statement(tenantID: question.tenantID, message: question.message, limit: limit)
                else { continue }
                let explained = PostgresQuery(unsafeSQL: "EXPLAIN (ANALYZE, BUFFERS) " + statement.sql, binds: statement.binds)
                let lines = try await database.query(explained, logger: logger).decode(String.self)
                result.plans.append("-- \(question.message)\n" + lines.joined(separator: "\n"))
            }
            return result
        }
    }
}
