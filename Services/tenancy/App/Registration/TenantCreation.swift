import Foundation
import HTTPTypes
import InternalAPI
import Logging
import ServiceCore

/// A tenant made by a super_admin (`POST /api/admin/tenants`), across services like a
/// registration: the tenant here (its slug reserved first), its trial in billing, its owner's
/// invitation in auth (which records the tenant in its directory and mails the link), then
/// onboarding and the default agent here. A failed step undoes the earlier ones with registration's
/// compensation (and `ProvisioningReaper` finishes what that could not).
struct TenantCreation: Sendable {
    let tenants: any AdminTenantRepository
    let registration: RegistrationService

    static let defaultMonthlyMessageQuota = 1_000

    var defaultRateLimitPerMinute: Int { registration.defaultRateLimitPerMinute }

    struct Result: Sendable {
        var tenant: TenantRecord
        var invitation: OwnerInvitation
        var trial: SubscriptionSummary
    }

    func create(_ new: NewTenant, ownerEmail: String, ownerFullName: String?, by superAdmin: UUID, logger: Logger) async throws -> Result {
        let provisional = try await tenants.createProvisioning(new, logger: logger)
        var logger = logger
        logger[metadataKey: "tenant_id"] = "\(provisional.id)"
        let undoable = Tenant(
            id: provisional.id, name: provisional.name, slug: provisional.slug, status: "provisioning",
            rateLimitPerMinute: provisional.rateLimitPerMinute, createdAt: provisional.createdAt
        )

        // The trial before the invitation: the mail goes out last, so a failed creation mails no one.
        let trial: SubscriptionSummary
        do {
            trial = try await registration.billing.send(
                .post, "/internal/subscriptions", body: StartTrialRequest(tenantId: provisional.id), as: SubscriptionSummary.self, logger: logger
            )
        } catch {
            await registration.undo(undoable, removeFromAuth: false, removeFromBilling: !RegistrationService.hadNoEffect(error), logger: logger)
            throw RegistrationService.publicError(error, step: "starting the trial")
        }

        let invitation: OwnerInvitation
        do {
            invitation = try await registration.auth.send(
                .post, "/internal/tenant-owner-invitations",
                body: OwnerInvitationRequest(
                    tenantId: provisional.id, tenantName: provisional.name, tenantSlug: provisional.slug, email: ownerEmail,
                    fullName: ownerFullName, invitedBy: superAdmin
                ),
                as: OwnerInvitation.self, logger: logger
            )
        } catch {
            await registration.undo(undoable, removeFromAuth: !RegistrationService.hadNoEffect(error), removeFromBilling: true, logger: logger)
            throw RegistrationService.publicError(error, step: "inviting the owner")
        }

        do {
            let tenant = try await tenants.activateCreated(provisional.id, agent: RegistrationService.defaultAgent(for: undoable), logger: logger)
            logger.notice("tenant created by a super_admin", metadata: ["slug": "\(tenant.slug)", "by": "\(superAdmin)"])
            return Result(tenant: tenant, invitation: invitation, trial: trial)
        } catch {
            await registration.undo(undoable, removeFromAuth: true, removeFromBilling: true, logger: logger)
            throw RegistrationService.publicError(error, step: "finishing the tenant")
        }
    }
}
