import Foundation
import Logging
import PostgresNIO

/// One step of seed 000's onboarding checklist, named by its column (and request field).
enum OnboardingStep: String, CaseIterable, Sendable {
    case accountCreated = "step_account_created"
    case emailVerified = "step_email_verified"
    case brandingUploaded = "step_branding_uploaded"
    case knowledgeBaseUploaded = "step_knowledge_base_uploaded"
    case agentConfigured = "step_agent_configured"
    case widgetTested = "step_widget_tested"
    case paymentCompleted = "step_payment_completed"

    /// What `next_step` calls it while it is open (nil: done at registration).
    var nextStepName: String? {
        switch self {
        case .accountCreated: nil
        case .emailVerified: "verify_email"
        case .brandingUploaded: "upload_branding"
        case .knowledgeBaseUploaded: "upload_knowledge_base"
        case .agentConfigured: "configure_agent"
        case .widgetTested: "test_widget"
        case .paymentCompleted: "complete_payment"
        }
    }

    /// What completes the step when a person may not (`PUT /api/onboarding/complete-step`); nil for
    /// the one step only a person can witness, testing the widget on their own site.
    var completedBy: String? {
        switch self {
        case .accountCreated: "registration"
        case .emailVerified: "verifying the email (auth.email_verified)"
        case .brandingUploaded: "uploading a branding asset"
        case .knowledgeBaseUploaded: "uploading a knowledge base document (chat.knowledge_base_uploaded)"
        case .agentConfigured: "saving the agent configuration"
        case .widgetTested: nil
        case .paymentCompleted: "a completed payment (billing.payment_completed)"
        }
    }
}

/// Marks onboarding steps done; the one place that does, so `completed_at` is always set with the last step.
enum OnboardingSteps {
    /// Marks `step` done for `tenantID` inside the caller's transaction on `connection` (an event
    /// handler's, or the write that completes the step, such as saving a branding asset), and sets
    /// `completed_at` when it was the last open step. Returns false when the tenant has no
    /// onboarding (unknown or deleted) or the step was already done.
    @discardableResult
    static func mark(_ step: OnboardingStep, tenantID: UUID, on connection: PostgresConnection, logger: Logger) async throws -> Bool {
        // Column names come from the enum, never from input.
        let others = OnboardingStep.allCases.filter { $0 != step }.map(\.rawValue).joined(separator: " AND ")
        let rows = try await connection.query(
            """
            UPDATE onboarding_progress SET \(unescaped: step.rawValue) = true, updated_at = now(),
                completed_at = CASE WHEN completed_at IS NULL AND \(unescaped: others) THEN now() ELSE completed_at END
            WHERE tenant_id = \(tenantID) AND NOT \(unescaped: step.rawValue)
            RETURNING tenant_id
            """,
            logger: logger
        ).collect()
        return !rows.isEmpty
    }
}
