import Foundation

/// `chat.knowledge_base_uploaded`, chat → tenancy: a tenant's knowledge base got its first (or
/// another) document; tenancy marks the onboarding step.
package struct KnowledgeBaseUploaded: Codable, Sendable, Equatable {
    package var tenantId: UUID
    package var documentId: UUID?

    package static let type: EventType = "chat.knowledge_base_uploaded"

    package init(tenantId: UUID, documentId: UUID? = nil) {
        self.tenantId = tenantId
        self.documentId = documentId
    }
}

/// `billing.payment_completed`, billing → tenancy: a tenant paid (a subscription became active);
/// tenancy marks the onboarding step.
package struct PaymentCompleted: Codable, Sendable, Equatable {
    package var tenantId: UUID
    package var plan: String?

    package static let type: EventType = "billing.payment_completed"

    package init(tenantId: UUID, plan: String? = nil) {
        self.tenantId = tenantId
        self.plan = plan
    }
}
