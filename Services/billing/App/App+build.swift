import Foundation
import Hummingbird
import InternalAPI
import ServiceCore

/// Builds the billing service: plans, subscriptions and trials.
package func buildBillingApplication(config: BillingConfig) async throws -> some ApplicationProtocol {
    let foundation = try await ServiceFoundation(name: "billing", config: config.common)
    let repository = PostgresBillingRepository(client: foundation.database)
    let verifier = foundation.accessTokenVerifier(jwksURL: config.jwksURL, refreshSeconds: config.jwksRefreshSeconds)

    let routes = foundation.makeRouter()
    PaymentsController(repository: repository, verifier: verifier).addRoutes(to: routes.group("api/payments"))
    InternalSubscriptionsController(repository: repository, trialDays: config.trialDays).addRoutes(
        provisioning: foundation.internalGroup(routes, accepting: ["tenancy"]),
        lookups: foundation.internalGroup(routes, accepting: ["tenancy", "chat"])
    )
    // Entitlements and usage: chat asks before each message and reports each answer as an event.
    let entitlements = EntitlementsController(
        subscriptions: repository, usage: PostgresUsageRepository(client: foundation.database), verifier: verifier, now: { Date() }
    )
    entitlements.addRoutes(lookups: foundation.internalGroup(routes, accepting: ["chat", "tenancy"]), payments: routes.group("api/payments"))
    EventReceiver(database: foundation.database, handlers: entitlements.eventHandlers(), senders: [MessageAnswered.type: "chat"])
        .addRoutes(to: foundation.internalGroup(routes, accepting: ["chat"]))
    return foundation.makeApplication(routes: routes, migrations: BillingMigrations.all, services: [verifier])
}
