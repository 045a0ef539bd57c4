import Foundation
import HTTPTypes
import InternalAPI
import NIOHTTP1
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

@testable import AuthApp

/// billing's trial events reach auth, which queues one mail per owner of the tenant, once per event.
@Suite("auth trial mails", .timeLimit(.minutes(3)))
struct TrialMailTests {
    static func mails(_ stack: TestStack, to email: String) async throws -> [String] {
        try await TestPostgres.withClient(stack.databases[.auth]!) { client in
            try await client.query("SELECT subject FROM mail_outbox WHERE recipient = \(email) ORDER BY created_at").collect().map { try $0.decode(String.self) }
        }
    }

    @Test func trialEndingAndEndedMailTheOwnersOnceEach() async throws {
        try await TestStack.with(.auth) { stack in
            let tenant = UUID()
            let email = Fixtures.uniqueEmail()
            #expect(try await Fixtures.createOwner(authURL: stack.url(.auth), tenantID: tenant, email: email).status == 201)
            let before = try await Self.mails(stack, to: email).count
            let endsAt = Date(timeIntervalSince1970: 1_800_000_000)

            let ending = try EventEnvelope(type: TrialEnding.type, source: "billing", payload: TrialEnding(tenantId: tenant, trialEndsAt: endsAt))
            let first = try await stack.callInternal(.post, .auth, "/internal/events", as: .billing, json: ending)
            #expect(try first.status == 200 && first.json(EventReceipt.self).status == .applied)
            // Delivered again by billing's relay: no second mail.
            #expect(try await stack.callInternal(.post, .auth, "/internal/events", as: .billing, json: ending).json(EventReceipt.self).status == .duplicate)
            let ended = try EventEnvelope(type: TrialEnded.type, source: "billing", payload: TrialEnded(tenantId: tenant, trialEndsAt: endsAt))
            #expect(try await stack.callInternal(.post, .auth, "/internal/events", as: .billing, json: ended).status == 200)

            let subjects = try await Self.mails(stack, to: email).dropFirst(before)
            #expect(subjects.count == 2)
            #expect(subjects.first?.contains("trial ends on 2027-01-15") == true)
            #expect(subjects.last?.contains("trial has ended") == true)

            // Only billing sends them: tenancy's copy is refused and queues nothing.
            let forged = try EventEnvelope(type: TrialEnded.type, source: "tenancy", payload: TrialEnded(tenantId: tenant, trialEndsAt: endsAt))
            let refused = try await stack.callInternal(.post, .auth, "/internal/events", as: .tenancy, json: forged)
            #expect(try refused.status == 403 && refused.error().code == "EVENT_SENDER_NOT_ALLOWED")
            #expect(try await Self.mails(stack, to: email).count == before + 2)
        }
    }
}
