import Foundation
import Logging
import PostgresNIO
import ServiceCore

/// A tenant's onboarding checklist as its endpoints read and change it.
struct OnboardingProgressStore: Sendable {
    struct Snapshot: Sendable {
        var progress: OnboardingProgress
        var completedAt: Date?

        var done: [OnboardingStep: Bool] {
            [
                .accountCreated: progress.stepAccountCreated, .emailVerified: progress.stepEmailVerified,
                .brandingUploaded: progress.stepBrandingUploaded, .knowledgeBaseUploaded: progress.stepKnowledgeBaseUploaded,
                .agentConfigured: progress.stepAgentConfigured, .widgetTested: progress.stepWidgetTested,
                .paymentCompleted: progress.stepPaymentCompleted,
            ]
        }

        var completionPercentage: Int {
            let done = self.done
            return OnboardingStep.allCases.filter { done[$0] == true }.count * 100 / OnboardingStep.allCases.count
        }

        /// The first open step, in the checklist's order.
        var nextStep: String? {
            let done = self.done
            return OnboardingStep.allCases.first { done[$0] != true }?.nextStepName
        }
    }

    let client: Database

    /// The checklist of a registered tenant (nil for an unknown or still-provisioning one).
    func read(tenantID: UUID, logger: Logger) async throws -> Snapshot? {
        let rows = try await client.query(
            """
            SELECT o.step_account_created, o.step_email_verified, o.step_branding_uploaded, o.step_knowledge_base_uploaded,
                   o.step_agent_configured, o.step_widget_tested, o.step_payment_completed, o.completed_at
            FROM onboarding_progress o JOIN tenants t ON t.id = o.tenant_id
            WHERE o.tenant_id = \(tenantID) AND t.status <> 'provisioning'
            """,
            logger: logger
        )
        for (a, b, c, d, e, f, g, completedAt) in try rows.decode((Bool, Bool, Bool, Bool, Bool, Bool, Bool, Date?).self) {
            let progress = OnboardingProgress(
                stepAccountCreated: a, stepEmailVerified: b, stepBrandingUploaded: c, stepKnowledgeBaseUploaded: d,
                stepAgentConfigured: e, stepWidgetTested: f, stepPaymentCompleted: g
            )
            return Snapshot(progress: progress, completedAt: completedAt)
        }
        return nil
    }

    /// Marks `steps` done in one transaction.
    func mark(_ steps: [OnboardingStep], tenantID: UUID, logger: Logger) async throws {
        try await client.transaction(logger: logger) { connection in
            for step in steps { try await OnboardingSteps.mark(step, tenantID: tenantID, on: connection, logger: logger) }
        }
    }
}
