import Foundation
import Logging
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

@Suite("database", .timeLimit(.minutes(1)))
struct DatabaseTests {
    /// A failing INSERT … RETURNING once kept its pooled connection: 8 of them dried up a pool of 8.
    @Test func failingStatementsGiveTheirConnectionBack() async throws {
        let config = try await TestPostgres.freshDatabase("pool")
        #expect(config.maxConnections == 8)
        let logger = Logger(label: "test")
        try await TestPostgres.withDatabase(config) { database in
            try await database.query("CREATE TABLE things (slug text PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT now())", logger: logger)
            try await database.query("INSERT INTO things (slug) VALUES ('taken')", logger: logger)
            for _ in 0..<40 {
                await #expect(throws: PSQLError.self) {
                    try await database.query("INSERT INTO things (slug) VALUES ('taken') RETURNING created_at", logger: logger)
                }
            }
            // Concurrent inserts of one new slug: all but one wait for the winner, then fail.
            for round in 0..<10 {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<12 {
                        group.addTask {
                            _ = try? await database.query("INSERT INTO things (slug) VALUES (\("slug-\(round)")) RETURNING created_at", logger: logger)
                        }
                    }
                    try await group.waitForAll()
                }
            }
            let rows = try await database.query("SELECT count(*)::int FROM things", logger: logger)
            #expect(try rows.decode(Int.self) == [11])
        }
    }
}
