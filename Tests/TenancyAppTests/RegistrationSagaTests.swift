import Foundation
import HTTPTypes
import InternalAPI
import Logging
import NIOHTTP1
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

@testable import TenancyApp

/// The registration saga's steps are idempotent under a registration id, and an undo leaves a
/// tombstone that a late write respects (auth's owner, billing's trial).
@Suite("tenancy registration saga")
struct RegistrationSagaTests {
    struct Owner: Decodable { var userId: UUID; var accessToken: String }

    static func ownerRequest(tenantID: UUID, registrationID: UUID, email: String) -> CreateOwnerRequest {
        CreateOwnerRequest(
            tenantId: tenantID, tenantName: "Saga", tenantSlug: "saga-\(tenantID.uuidString.prefix(8).lowercased())", email: email,
            password: Fixtures.password, fullName: nil, registrationId: registrationID
        )
    }

    @Test func authOwnerCreationIsIdempotentAndRespectsItsTombstone() async throws {
        try await TestStack.with(.auth) { stack in
            let (tenantID, registrationID, email) = (UUID(), UUID(), Fixtures.uniqueEmail("saga"))
            let request = Self.ownerRequest(tenantID: tenantID, registrationID: registrationID, email: email)
            let responses = try await withThrowingTaskGroup(of: TestResponse.self) { group in
                for _ in 0..<4 { group.addTask { try await stack.callInternal(.post, .auth, "/internal/owners", as: .tenancy, json: request) } }
                return try await group.reduce(into: [TestResponse]()) { $0.append($1) }
            }
            #expect(responses.map(\.status).sorted() == [200, 200, 200, 201])
            #expect(Set(try responses.map { try $0.json(Owner.self).userId }).count == 1)
            let users = "SELECT count(*)::int FROM users WHERE email = \(email)" as PostgresQuery
            #expect(try await TestPostgres.count(stack.databases[.auth]!, users) == 1)

            let badID = try await stack.callInternal(.delete, .auth, "/internal/tenants/\(tenantID)?registration_id=nope", as: .tenancy)
            #expect(badID.status == 400)
            #expect(try await TestPostgres.count(stack.databases[.auth]!, users) == 1)

            let undo = try await stack.callInternal(.delete, .auth, "/internal/tenants/\(tenantID)?registration_id=\(registrationID)", as: .tenancy)
            #expect(undo.status == 204)
            #expect(try await TestPostgres.count(stack.databases[.auth]!, users) == 0)
            let late = try await stack.callInternal(.post, .auth, "/internal/owners", as: .tenancy, json: request)
            #expect(late.status == 410)
            #expect(try late.error().code == "REGISTRATION_UNDONE")
            #expect(try await TestPostgres.count(stack.databases[.auth]!, users) == 0)
            #expect(try await TestPostgres.count(stack.databases[.auth]!, "SELECT count(*)::int FROM tenant_directory WHERE tenant_id = \(tenantID)") == 0)

            // An undo that comes first leaves the tombstone all the same.
            let (otherTenant, otherRegistration) = (UUID(), UUID())
            #expect(
                try await stack.callInternal(.delete, .auth, "/internal/tenants/\(otherTenant)?registration_id=\(otherRegistration)", as: .tenancy)
                    .status == 204
            )
            let tooLate = try await stack.callInternal(
                .post, .auth, "/internal/owners", as: .tenancy, json: Self.ownerRequest(tenantID: otherTenant, registrationID: otherRegistration, email: email)
            )
            #expect(tooLate.status == 410)
            // The email is free for a new registration.
            let fresh = try await stack.callInternal(
                .post, .auth, "/internal/owners", as: .tenancy, json: Self.ownerRequest(tenantID: UUID(), registrationID: UUID(), email: email)
            )
            #expect(fresh.status == 201)
        }
    }

    @Test func billingTrialStartedAfterItsUndoIsRefused() async throws {
        try await TestStack.with(.billing) { stack in
            let tenantID = UUID()
            let subscriptions = "SELECT count(*)::int FROM subscriptions WHERE tenant_id = \(tenantID)" as PostgresQuery
            #expect(try await stack.callInternal(.post, .billing, "/internal/subscriptions", as: .tenancy, json: StartTrialRequest(tenantId: tenantID)).status == 201)
            #expect(try await stack.callInternal(.post, .billing, "/internal/subscriptions", as: .tenancy, json: StartTrialRequest(tenantId: tenantID)).status == 200)
            #expect(try await stack.callInternal(.delete, .billing, "/internal/subscriptions/\(tenantID)", as: .tenancy).status == 204)
            let late = try await stack.callInternal(.post, .billing, "/internal/subscriptions", as: .tenancy, json: StartTrialRequest(tenantId: tenantID))
            #expect(late.status == 410)
            #expect(try late.error().code == "TRIAL_WITHDRAWN")
            #expect(try await TestPostgres.count(stack.databases[.billing]!, subscriptions) == 0)
        }
    }

    /// auth's owner insert is held up (by a transaction of the test's own holding the same email in
    /// auth's database) past tenancy's 10 s deadline: tenancy undoes the registration first, then the
    /// insert goes on, finds the tombstone and rolls back. Nothing is left and the email stays free.
    @Test func anOwnerWrittenAfterTheUndoLeavesNothing() async throws {
        try await TestStack.with(.auth, .billing, .tenancy) { stack in
            let email = Fixtures.uniqueEmail("late")
            let auth = stack.databases[.auth]!
            struct RollBack: Error {}
            do {
                _ = try await TestPostgres.withClient(auth) { client in
                    try await client.withTransaction(logger: Logger(label: "test")) { connection in
                        let blocker = UUID()
                        try await connection.query("INSERT INTO tenant_directory (tenant_id, name, slug) VALUES (\(blocker), 'Blocker', \("blocker-\(blocker)"))", logger: Logger(label: "test"))
                        try await connection.query(
                            """
                            INSERT INTO users (id, tenant_id, email, password_hash, role) VALUES (\(UUID()), \(blocker), \(email), 'x', 'user')
                            """,
                            logger: Logger(label: "test")
                        )
                        let response = try await TestHTTP.send(
                            .POST, stack.url(.tenancy) + "/api/onboarding/register", headers: ["Idempotency-Key": "late-\(UUID())"],
                            json: ["email": email, "password": Fixtures.password]
                        )
                        #expect(response.status == 504, "\(response.text)")
                        // The owner insert is still waiting on the test's transaction…
                        let waiting = try await TestPostgres.count(
                            auth, "SELECT count(*)::int FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO users%'"
                        )
                        #expect(waiting == 1)
                        // …while tenancy has undone everything and auth holds the tombstone.
                        #expect(try await TestPostgres.count(stack.databases[.tenancy]!, "SELECT count(*)::int FROM tenants") == 0)
                        #expect(try await TestPostgres.count(auth, "SELECT count(*)::int FROM owner_registrations WHERE undone_at IS NOT NULL") == 1)
                        throw RollBack()
                    }
                }
            } catch is RollBack {
            } catch let error as PostgresTransactionError where error.closureError is RollBack {
            }
            // The late insert now goes on, and must roll itself back.
            let deadline = ContinuousClock.now + .seconds(10)
            while try await TestPostgres.count(auth, "SELECT count(*)::int FROM pg_stat_activity WHERE query LIKE 'INSERT INTO users%' AND state = 'active'") > 0,
                ContinuousClock.now < deadline
            {
                try await Task.sleep(for: .milliseconds(50))
            }
            try await Task.sleep(for: .milliseconds(500))
            #expect(try await TestPostgres.count(auth, "SELECT count(*)::int FROM users WHERE email = \(email)") == 0)
            #expect(try await TestPostgres.count(auth, "SELECT count(*)::int FROM tenant_directory WHERE name <> 'Blocker'") == 0)
            #expect(try await TestPostgres.count(stack.databases[.tenancy]!, "SELECT count(*)::int FROM tenants") == 0)
            #expect(try await TestPostgres.count(stack.databases[.billing]!, "SELECT count(*)::int FROM subscriptions") == 0)

            // The email registers again.
            let again = try await Fixtures.register(at: stack.url(.tenancy), email: email)
            #expect(again.email == email)
        }
    }
}
