import AsyncHTTPClient
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

/// Registrations whose compensation could not finish are cleaned up later, in every service.
@Suite("tenancy provisioning reaper")
struct ProvisioningReaperTests {
    /// A tenant left in `provisioning` ten minutes ago, with the owner and trial it had got so far.
    static func abandonedRegistration(_ stack: TestStack) async throws -> UUID {
        let tenantID = UUID()
        _ = try await TestPostgres.withClient(stack.databases[.tenancy]!) { client in
            try await client.query(
                """
                INSERT INTO tenants (id, name, slug, status, rate_limit_per_minute, created_at)
                VALUES (\(tenantID), 'Stuck', \("stuck-" + tenantID.uuidString.prefix(8).lowercased()), 'provisioning', 60, now() - interval '10 minutes')
                """
            )
        }
        #expect(try await Fixtures.createOwner(authURL: stack.url(.auth), tenantID: tenantID).status == 201)
        let trial = try await stack.callInternal(.post, .billing, "/internal/subscriptions", as: .tenancy, json: StartTrialRequest(tenantId: tenantID))
        #expect(trial.status == 201)
        return tenantID
    }

    static func leftovers(_ stack: TestStack, _ tenantID: UUID) async throws -> [Int] {
        [
            try await TestPostgres.count(stack.databases[.tenancy]!, "SELECT count(*)::int FROM tenants WHERE id = \(tenantID)"),
            try await TestPostgres.count(stack.databases[.auth]!, "SELECT count(*)::int FROM users WHERE tenant_id = \(tenantID)"),
            try await TestPostgres.count(stack.databases[.billing]!, "SELECT count(*)::int FROM subscriptions WHERE tenant_id = \(tenantID)"),
        ]
    }

    @Test func abandonedRegistrationsAreRemovedOnceEveryServiceAnswers() async throws {
        try await TestStack.with(.auth, .billing, .tenancy) { stack in
            let stuck = try await Self.abandonedRegistration(stack)
            let recent = try await Fixtures.register(at: stack.url(.tenancy))
            let http = HTTPClient.makeInternal()
            let tenancy = try await CallerIdentity(name: "tenancy", privateKeyPEM: TestStack.serviceKeys[.tenancy]!.privateKeyPEM)
            try await TestPostgres.withDatabase(stack.databases[.tenancy]!) { database in
                let tenants = PostgresTenantRepository(client: database)
                let registration = RegistrationService(
                    tenants: tenants,
                    auth: InternalClient(service: "auth", baseURL: stack.url(.auth), http: http, identity: tenancy),
                    billing: InternalClient(service: "billing", baseURL: stack.url(.billing), http: http, identity: tenancy),
                    defaultRateLimitPerMinute: 60
                )
                let reaper = ProvisioningReaper(
                    tenants: tenants, registration: registration, abandonedAfter: .seconds(300), interval: .seconds(60),
                    logger: Logger(label: "test")
                )

                // auth unreachable: nothing is declared done, the tenant waits for the next pass.
                await stack.stop(.auth)
                #expect(await reaper.reapOnce() == 0)
                #expect(try await Self.leftovers(stack, stuck)[0] == 1)

                try await stack.start(.auth)
                #expect(await reaper.reapOnce() == 1)
                #expect(try await Self.leftovers(stack, stuck) == [0, 0, 0])
                #expect(await reaper.reapOnce() == 0)
            }
            try await http.shutdown()
            // Finished registrations are never touched.
            #expect(try await Self.leftovers(stack, UUID(uuidString: recent.tenantId)!) == [1, 1, 1])
        }
    }
}
