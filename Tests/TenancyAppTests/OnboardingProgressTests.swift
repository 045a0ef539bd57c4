import Foundation
import HTTPTypes
import InternalAPI
import NIOHTTP1
import PostgresNIO
import ServiceCore
import TestSupport
import Testing

@testable import TenancyApp

/// `GET /api/onboarding/status`, `PUT /api/onboarding/complete-step`, `GET /api/onboarding/trial-info`
/// and the events that complete steps, against the real auth, billing and tenancy.
@Suite("tenancy onboarding progress")
struct OnboardingProgressTests {
    struct Status: Decodable {
        var tenantId: String
        var accountName: String
        var plan: String?
        var subscriptionStatus: String?
        var trialEndsAt: Date?
        var isTrialExpired: Bool?
        var billingAvailable: Bool
        var progress: [String: Bool]
        var completionPercentage: Int
        var nextStep: String?
        var completedAt: Date?
    }

    struct Updated: Decodable {
        var status: String
        var progress: [String: Bool]
        var completionPercentage: Int
        var nextStep: String?
        var completedAt: Date?
    }

    struct TrialInfo: Decodable {
        var plan: String
        var status: String
        var trialEndsAt: Date?
        var daysRemaining: Int
        var isExpired: Bool
    }

    static func progressRow(_ stack: TestStack, _ tenantID: String) async throws -> String {
        try await TestPostgres.withClient(stack.databases[.tenancy]!) { client in
            let rows = try await client.query(
                "SELECT row_to_json(o)::text FROM (SELECT * FROM onboarding_progress WHERE tenant_id = \(UUID(uuidString: tenantID)!)) o"
            )
            for try await text in rows.decode(String.self) { return text }
            return ""
        }
    }

    static func status(_ stack: TestStack, _ token: String) async throws -> TestResponse {
        try await TestHTTP.send(.GET, stack.url(.tenancy) + "/api/onboarding/status", headers: Fixtures.bearer(token))
    }

    @Test func statusAnswersWithoutBillingMarkingItsFieldsUnavailable() async throws {
        try await TestStack.with(.auth, .billing, .tenancy) { stack in
            let registered = try await Fixtures.register(at: stack.url(.tenancy), accountName: "Status Shop")
            let response = try await Self.status(stack, registered.accessToken)
            #expect(response.status == 200)
            let status = try response.json(Status.self)
            #expect(status.tenantId == registered.tenantId)
            #expect(status.accountName == "Status Shop")
            #expect(status.plan == "trial")
            #expect(status.subscriptionStatus == "trialing")
            #expect(status.isTrialExpired == false)
            #expect(status.trialEndsAt != nil)
            #expect(status.billingAvailable)
            #expect(status.progress.count == 7)
            #expect(status.progress["step_account_created"] == true)
            #expect(status.completionPercentage == 14)
            #expect(status.nextStep == "verify_email")
            #expect(status.completedAt == nil)
            #expect(try await TestHTTP.send(.GET, stack.url(.tenancy) + "/api/onboarding/status").status == 401)

            await stack.stop(.billing)
            let degraded = try await Self.status(stack, registered.accessToken)
            #expect(degraded.status == 200)
            let partial = try degraded.json(Status.self)
            #expect(!partial.billingAvailable)
            #expect(partial.plan == nil && partial.subscriptionStatus == nil && partial.trialEndsAt == nil && partial.isTrialExpired == nil)
            #expect(partial.progress == status.progress)
            #expect(partial.completionPercentage == 14)
            // The nulls are written out, not left away.
            for field in ["\"plan\":null", "\"subscription_status\":null", "\"trial_ends_at\":null", "\"is_trial_expired\":null"] {
                #expect(degraded.text.contains(field), "\(field) in \(degraded.text)")
            }

            // trial-info is billing's alone: without it, 503.
            let trial = try await TestHTTP.send(.GET, stack.url(.tenancy) + "/api/onboarding/trial-info", headers: Fixtures.bearer(registered.accessToken))
            #expect(trial.status == 503)
        }
    }

    @Test func trialInfoComesFromBilling() async throws {
        try await TestStack.with(.auth, .billing, .tenancy) { stack in
            let registered = try await Fixtures.register(at: stack.url(.tenancy))
            let url = stack.url(.tenancy) + "/api/onboarding/trial-info"
            let response = try await TestHTTP.send(.GET, url, headers: Fixtures.bearer(registered.accessToken))
            #expect(response.status == 200)
            let info = try response.json(TrialInfo.self)
            #expect(info.plan == "trial")
            #expect(info.status == "trialing")
            #expect(info.daysRemaining == 14)
            #expect(!info.isExpired)
            #expect(info.trialEndsAt.map { abs($0.timeIntervalSince(registered.trialEndsAt!)) < 1 } == true)

            // Expired yesterday.
            _ = try await TestPostgres.withClient(stack.databases[.billing]!) { client in
                try await client.query("UPDATE subscriptions SET trial_ends_at = now() - interval '1 day' WHERE tenant_id = \(UUID(uuidString: registered.tenantId)!)")
            }
            let expired = try await TestHTTP.send(.GET, url, headers: Fixtures.bearer(registered.accessToken)).json(TrialInfo.self)
            #expect(expired.isExpired)
            #expect(expired.daysRemaining == 0)
            #expect(try await Self.status(stack, registered.accessToken).json(Status.self).isTrialExpired == true)

            #expect(try await TestHTTP.send(.GET, url).status == 401)
            // A token of a tenant that does not exist here: 404.
            let forge = try await TokenForge.fromAuthDatabase(stack.databases[.auth]!)
            let stranger = try await TestHTTP.send(.GET, url, headers: Fixtures.bearer(try await forge.sign(tenantID: UUID())))
            #expect(stranger.status == 404)
        }
    }

    @Test func completeStepMarksOnlyWhatAPersonMayAndChangesNothingOtherwise() async throws {
        try await TestStack.with(.auth, .billing, .tenancy) { stack in
            let registered = try await Fixtures.register(at: stack.url(.tenancy))
            let url = stack.url(.tenancy) + "/api/onboarding/complete-step"
            let owner = Fixtures.bearer(registered.accessToken)
            let before = try await Self.progressRow(stack, registered.tenantId)

            let refusals: [(String, String, String)] = [
                (#"{"step_payment_completed": true}"#, "step_payment_completed", "completes by itself"),
                (#"{"step_email_verified": true}"#, "step_email_verified", "completes by itself"),
                (#"{"step_branding_uploaded": true}"#, "step_branding_uploaded", "completes by itself"),
                (#"{"step_launch_rocket": true}"#, "step_launch_rocket", "is not an onboarding step"),
                (#"{"step_widget_tested": false}"#, "step_widget_tested", "must be true"),
                (#"{"step_widget_tested": "yes"}"#, "step_widget_tested", "must be true"),
                (#"{"step_widget_tested": true, "hack": 1}"#, "hack", "is not an onboarding step"),
                ("{}", "step_widget_tested", "name the step"),
            ]
            for (body, field, message) in refusals {
                let response = try await TestHTTP.send(.PUT, url, headers: owner, body: body)
                #expect(response.status == 422, "\(body)")
                #expect(try response.error().fields?[field]?.first?.contains(message) == true, "\(body): \(response.text)")
            }
            for body in ["[true]", #"{"step_widget_tested": tru"#, "null"] {
                #expect(try await TestHTTP.send(.PUT, url, headers: owner, body: body).status == 400, "\(body)")
            }
            #expect(try await TestHTTP.send(.PUT, url, body: #"{"step_widget_tested": true}"#).status == 401)
            // A plain user of the tenant may not; a token of another tenant finds nothing.
            let forge = try await TokenForge.fromAuthDatabase(stack.databases[.auth]!)
            let user = try await forge.sign(tenantID: UUID(uuidString: registered.tenantId)!, role: .user)
            let forbidden = try await TestHTTP.send(.PUT, url, headers: Fixtures.bearer(user), body: #"{"step_widget_tested": true}"#)
            #expect(forbidden.status == 403)
            #expect(try forbidden.error().code == "ROLE_NOT_ALLOWED")
            let elsewhere = try await forge.sign(tenantID: UUID(), role: .admin)
            #expect(try await TestHTTP.send(.PUT, url, headers: Fixtures.bearer(elsewhere), body: #"{"step_widget_tested": true}"#).status == 404)
            #expect(try await Self.progressRow(stack, registered.tenantId) == before)

            let admin = try await forge.sign(tenantID: UUID(uuidString: registered.tenantId)!, role: .admin)
            let marked = try await TestHTTP.send(.PUT, url, headers: Fixtures.bearer(admin), body: #"{"step_widget_tested": true}"#)
            #expect(marked.status == 200)
            let updated = try marked.json(Updated.self)
            #expect(updated.status == "updated")
            #expect(updated.progress["step_widget_tested"] == true)
            #expect(updated.completionPercentage == 28)
            #expect(updated.nextStep == "verify_email")
            // Marking it again is harmless.
            #expect(try await TestHTTP.send(.PUT, url, headers: owner, body: #"{"step_widget_tested": true}"#).json(Updated.self) .completionPercentage == 28)
        }
    }

    @Test func eventsCompleteStepsOnceAndOnlyFromTheirSender() async throws {
        try await TestStack.with(.auth, .billing, .tenancy) { stack in
            let registered = try await Fixtures.register(at: stack.url(.tenancy))
            let tenantID = UUID(uuidString: registered.tenantId)!
            let kb = try EventEnvelope(type: KnowledgeBaseUploaded.type, source: "chat", payload: KnowledgeBaseUploaded(tenantId: tenantID))
            let paid = try EventEnvelope(type: PaymentCompleted.type, source: "billing", payload: PaymentCompleted(tenantId: tenantID, plan: "pro"))
            let verified = try EventEnvelope(
                type: EmailVerified.type, source: "auth", payload: EmailVerified(userId: UUID(uuidString: registered.userId)!, tenantId: tenantID, email: registered.email)
            )
            let before = try await Self.progressRow(stack, registered.tenantId)

            // Each type only from the service that emits it; others are refused and change nothing.
            for (event, impostor) in [(kb, ServiceName.billing), (paid, .chat), (paid, .auth), (verified, .chat)] {
                let refused = try await stack.callInternal(.post, .tenancy, EventEnvelope.deliveryPath, as: impostor, json: event)
                #expect(refused.status == 403, "\(event.type) as \(impostor)")
                #expect(try refused.error().code == "EVENT_SENDER_NOT_ALLOWED")
            }
            #expect(try await stack.callInternal(.post, .tenancy, EventEnvelope.deliveryPath, as: .gateway, json: kb).status == 401)
            #expect(try await Self.progressRow(stack, registered.tenantId) == before)
            #expect(try await TestPostgres.count(stack.databases[.tenancy]!, "SELECT count(*)::int FROM processed_events") == 0)

            for (event, sender) in [(kb, ServiceName.chat), (paid, .billing), (verified, .auth)] {
                let first = try await stack.callInternal(.post, .tenancy, EventEnvelope.deliveryPath, as: sender, json: event)
                #expect(try first.json(EventReceipt.self).status == .applied)
                let again = try await stack.callInternal(.post, .tenancy, EventEnvelope.deliveryPath, as: sender, json: event)
                #expect(try again.json(EventReceipt.self).status == .duplicate)
            }
            // A payload that is not the type's shape: 422, nothing recorded.
            let broken = EventEnvelope(type: PaymentCompleted.type, source: "billing", payload: ["tenant_id": .string("nope")])
            #expect(try await stack.callInternal(.post, .tenancy, EventEnvelope.deliveryPath, as: .billing, json: broken).status == 422)

            var status = try await Self.status(stack, registered.accessToken).json(Status.self)
            #expect(status.progress["step_knowledge_base_uploaded"] == true)
            #expect(status.progress["step_payment_completed"] == true)
            #expect(status.progress["step_email_verified"] == true)
            #expect(status.completionPercentage == 57)
            #expect(status.nextStep == "upload_branding")
            #expect(status.completedAt == nil)

            // Branding and agent are tenancy's own writes (OnboardingSteps.mark in their transactions);
            // with the widget tested by hand the checklist is complete.
            try await TestPostgres.withDatabase(stack.databases[.tenancy]!) { database in
                try await OnboardingProgressStore(client: database).mark([.brandingUploaded, .agentConfigured], tenantID: tenantID, logger: .init(label: "test"))
            }
            #expect(try await Self.status(stack, registered.accessToken).json(Status.self).completedAt == nil)
            let last = try await TestHTTP.send(
                .PUT, stack.url(.tenancy) + "/api/onboarding/complete-step", headers: Fixtures.bearer(registered.accessToken),
                body: #"{"step_widget_tested": true}"#
            )
            #expect(try last.json(Updated.self).completedAt != nil)
            status = try await Self.status(stack, registered.accessToken).json(Status.self)
            #expect(status.completionPercentage == 100)
            #expect(status.nextStep == nil)
            let completedAt = try #require(status.completedAt)
            // Later events change nothing, not even the completion time.
            let another = try EventEnvelope(type: PaymentCompleted.type, source: "billing", payload: PaymentCompleted(tenantId: tenantID))
            #expect(try await stack.callInternal(.post, .tenancy, EventEnvelope.deliveryPath, as: .billing, json: another).json(EventReceipt.self).status == .applied)
            #expect(try await Self.status(stack, registered.accessToken).json(Status.self).completedAt == completedAt)
        }
    }
}
