import Foundation
import HTTPTypes
import InternalAPI
import Logging
import ServiceCore

/// Self-registration across services: tenant here, owner in auth, trial in billing, onboarding here.
///
/// Each step that succeeded is undone when a later one fails (compensation), so a failed
/// registration leaves no tenant, user or subscription behind. Every attempt has a registration id
/// that auth knows it by (and billing by the tenant id, new for every attempt): a step repeated under
/// it does nothing new, and its undo leaves a tombstone there, so a step whose call timed out but
/// whose write lands after the undo creates nothing.
struct RegistrationService: Sendable {
    let tenants: any TenantRepository
    let auth: InternalClient
    let billing: InternalClient
    let defaultRateLimitPerMinute: Int

    struct Input: Sendable {
        var email: String
        var password: String
        var accountName: String?
        var fullName: String?
    }

    struct Result: Sendable {
        var tenant: Tenant
        var owner: CreatedOwner
        var trial: SubscriptionSummary
    }

    func register(_ input: Input, registrationID: UUID = UUID(), logger: Logger) async throws -> Result {
        let accountName = input.accountName ?? Self.accountName(fromEmail: input.email)
        let tenant = try await tenants.createProvisioning(
            name: accountName,
            slugBase: Slug.make(from: accountName),
            rateLimitPerMinute: defaultRateLimitPerMinute,
            registrationID: registrationID,
            logger: logger
        )
        var logger = logger
        logger[metadataKey: "tenant_id"] = "\(tenant.id)"
        logger[metadataKey: "registration_id"] = "\(registrationID)"

        let owner: CreatedOwner
        do {
            owner = try await createOwner(
                input, tenantID: tenant.id, tenantName: tenant.name, tenantSlug: tenant.slug, registrationID: registrationID, logger: logger
            )
        } catch {
            // Unless auth surely did nothing, it may have created the user before the answer was lost.
            await undo(tenant, removeFromAuth: !Self.hadNoEffect(error), removeFromBilling: false, logger: logger)
            throw Self.publicError(error, step: "creating the owner account")
        }

        do {
            let trial = try await billing.send(
                .post, "/internal/subscriptions", body: StartTrialRequest(tenantId: tenant.id), as: SubscriptionSummary.self,
                logger: logger
            )
            try await tenants.activate(tenant, agent: Self.defaultAgent(for: tenant), logger: logger)
            logger.info("tenant registered", metadata: ["slug": "\(tenant.slug)", "user_id": "\(owner.userId)"])
            return Result(tenant: tenant, owner: owner, trial: trial)
        } catch {
            await undo(tenant, removeFromAuth: true, removeFromBilling: !Self.hadNoEffect(error), logger: logger)
            throw Self.publicError(error, step: "starting the trial")
        }
    }

    /// The owner in auth, created under `registrationID`: called again with the same id (a replayed
    /// registration) it creates nothing and answers the same user with fresh tokens.
    func createOwner(
        _ input: Input, tenantID: UUID, tenantName: String, tenantSlug: String, registrationID: UUID, logger: Logger
    ) async throws -> CreatedOwner {
        try await auth.send(
            .post,
            "/internal/owners",
            body: CreateOwnerRequest(
                tenantId: tenantID, tenantName: tenantName, tenantSlug: tenantSlug, email: input.email, password: input.password,
                fullName: input.fullName, registrationId: registrationID
            ),
            as: CreatedOwner.self,
            logger: logger
        )
    }

    /// Compensation. If auth or billing cannot be reached, the tenant row stays in `provisioning`
    /// (invisible to everyone) and `ProvisioningReaper` tries again later; returns whether all went.
    @discardableResult
    func undo(_ tenant: Tenant, removeFromAuth: Bool, removeFromBilling: Bool, logger: Logger) async -> Bool {
        let id = tenant.id.uuidString.lowercased()
        var steps: [(client: InternalClient, path: String, what: String)] = []
        if removeFromBilling { steps.append((billing, "/internal/subscriptions/\(id)", "trial")) }
        if removeFromAuth {
            // Under its registration id auth also leaves a tombstone that refuses a late owner creation.
            let attempt = tenant.registrationID.map { "?registration_id=\($0.uuidString.lowercased())" } ?? ""
            steps.append((auth, "/internal/tenants/\(id)\(attempt)", "owner"))
        }
        var clean = true
        for step in steps {
            do {
                try await step.client.send(.delete, step.path, logger: logger)
            } catch {
                clean = false
                logger.error("compensation failed: \(step.what) not removed", metadata: ["error": "\(error)"])
            }
        }
        guard clean else { return false }
        do {
            try await tenants.delete(tenant.id, logger: logger)
            logger.notice("registration rolled back")
            return true
        } catch {
            logger.error("compensation failed: tenant not removed", metadata: ["error": "\(error)"])
            return false
        }
    }

    /// True when the failed call certainly changed nothing at the other service: it was refused
    /// (4xx) or never connected. A 5xx may come after a commit, so it is undone like a timeout.
    static func hadNoEffect(_ error: any Error) -> Bool {
        switch error {
        case InternalCallError.rejected(_, let status, _): (400..<500).contains(status)
        case InternalCallError.notConnected: true
        default: false
        }
    }

    /// What the client sees: auth's own 409/422 verdicts pass through, everything else is upstream trouble.
    static func publicError(_ error: any Error, step: String) -> AppError {
        switch error {
        case InternalCallError.rejected(_, let status, let body?) where status == 409 || status == 422:
            return AppError(status == 409 ? .conflict : .unprocessableContent, code: body.code, detail: body.detail, fields: body.fields)
        case let error as InternalCallError:
            var appError = error.publicError
            appError.detail = "Registration failed while \(step): \(appError.detail)"
            return appError
        case let error as AppError:
            return error
        default:
            return AppError(.serviceUnavailable, code: "REGISTRATION_FAILED", detail: "Registration failed while \(step); try again")
        }
    }

    static func accountName(fromEmail email: String) -> String {
        let local = email.split(separator: "@").first.map(String.init) ?? email
        return local.isEmpty ? "My account" : local
    }

    static func defaultAgent(for tenant: Tenant) -> AgentConfig {
        AgentConfig(
            agentName: "Assistant",
            tone: "friendly",
            greetingMessage: "Hi! I'm the virtual assistant of \(tenant.name). How can I help you today?"
        )
    }
}
