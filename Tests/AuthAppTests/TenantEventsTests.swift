import Foundation
import HTTPTypes
import InternalAPI
import NIOHTTP1
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

@testable import AuthApp

/// tenancy's side of auth: its tenant events keep the directory's name true (newest state wins,
/// each event once), and the owner invitation of a tenant a super_admin created; both for tenancy alone.
@Suite("auth tenant events and owner invitations", .timeLimit(.minutes(3)))
struct TenantEventsTests {
    static func directoryName(_ stack: TestStack, _ tenant: UUID) async throws -> String? {
        try await TestPostgres.withClient(stack.databases[.auth]!) { client in
            try await client.query("SELECT name FROM tenant_directory WHERE tenant_id = \(tenant)").collect().first?.decode(String.self)
        }
    }

    static func event(_ type: EventType, _ tenant: UUID, name: String, version: Int64) throws -> EventEnvelope {
        try EventEnvelope(
            type: type, source: "tenancy",
            payload: TenantChanged(tenantId: tenant, name: name, slug: "acme-x", status: "active", version: version)
        )
    }

    @Test func tenantEventsKeepTheDirectoryTrueOnceEachNewestFirst() async throws {
        try await TestStack.with(.auth) { stack in
            let tenant = UUID()
            #expect(try await Fixtures.createOwner(authURL: stack.url(.auth), tenantID: tenant).status == 201)
            #expect(try await Self.directoryName(stack, tenant) == "Acme")

            let renamed = try Self.event(TenantChanged.renamed, tenant, name: "Acme Two", version: 2_000)
            let first = try await stack.callInternal(.post, .auth, "/internal/events", as: .tenancy, json: renamed)
            #expect(first.status == 200)
            #expect(try first.json(EventReceipt.self).status == .applied)
            #expect(try await Self.directoryName(stack, tenant) == "Acme Two")
            // The same event again: acknowledged, not applied twice.
            #expect(try await stack.callInternal(.post, .auth, "/internal/events", as: .tenancy, json: renamed).json(EventReceipt.self).status == .duplicate)
            // An older change delivered late changes nothing.
            let late = try Self.event(TenantChanged.suspended, tenant, name: "Acme Old", version: 1_000)
            #expect(try await stack.callInternal(.post, .auth, "/internal/events", as: .tenancy, json: late).json(EventReceipt.self).status == .applied)
            #expect(try await Self.directoryName(stack, tenant) == "Acme Two")
            // Only tenancy sends them.
            let forged = try Self.event(TenantChanged.renamed, tenant, name: "Hijacked", version: 9_000)
            for caller in [ServiceName.chat, .gateway] {
                let refused = try await stack.callInternal(.post, .auth, "/internal/events", as: caller, json: forged)
                #expect(refused.status == 401)
            }
            // billing reaches the route (its trial events) but may not send tenancy's.
            let fromBilling = try await stack.callInternal(.post, .auth, "/internal/events", as: .billing, json: forged)
            #expect(try fromBilling.status == 403 && fromBilling.error().code == "EVENT_SENDER_NOT_ALLOWED")
            #expect(try await Self.directoryName(stack, tenant) == "Acme Two")
        }
    }

    @Test func ownerInvitationsAreForTenancyAloneAndValidated() async throws {
        try await TestStack.with(.auth) { stack in
            let tenant = UUID()
            let request = OwnerInvitationRequest(
                tenantId: tenant, tenantName: "Made Co", tenantSlug: "made-co", email: " Boss@Example.com ", fullName: "Boss", invitedBy: UUID()
            )
            // A caller other than tenancy: refused, nothing recorded.
            let refused = try await stack.callInternal(.post, .auth, "/internal/tenant-owner-invitations", as: .chat, json: request)
            #expect(refused.status == 401)
            var bad = request
            bad.email = "nope"
            let invalid = try await stack.callInternal(.post, .auth, "/internal/tenant-owner-invitations", as: .tenancy, json: bad)
            #expect(invalid.status == 422)
            #expect(try invalid.error().fields?["email"] != nil)
            #expect(try await TestPostgres.count(stack.databases[.auth]!, "SELECT count(*)::int FROM tenant_directory WHERE tenant_id = \(tenant)") == 0)

            // The inviter is a real account (its name goes in the mail); tenancy vouches for its role.
            let admin = try await UserManagementTests.tenant(stack)
            var good = request
            good.invitedBy = UUID(uuidString: admin.owner.id)!
            let made = try await stack.callInternal(.post, .auth, "/internal/tenant-owner-invitations", as: .tenancy, json: good)
            #expect(made.status == 201, "\(made.text)")
            let invitation = try made.json(OwnerInvitation.self)
            #expect(invitation.email == "boss@example.com")
            #expect(try await Self.directoryName(stack, tenant) == "Made Co")
            #expect(try await TestPostgres.count(
                stack.databases[.auth]!,
                "SELECT count(*)::int FROM invitations WHERE tenant_id = \(tenant) AND role = 'owner' AND id = \(invitation.invitationId)"
            ) == 1)
            #expect(try await TestPostgres.count(stack.databases[.auth]!, "SELECT count(*)::int FROM mail_outbox WHERE recipient = 'boss@example.com'") == 1)
        }
    }
}
