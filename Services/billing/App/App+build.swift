import Foundation
import HTTPTypes
import Hummingbird
import InternalAPI
import Logging
import PostgresNIO
import ServiceCore

/// Builds the billing service: plans, subscriptions and trials, payments and their webhooks.
package func buildBillingApplication(config: BillingConfig) async throws -> some ApplicationProtocol {
    try await buildBillingApplication(config: config, clock: SystemClock())
}

/// `clock` is billing's time: tests pass one they move.
func buildBillingApplication(config: BillingConfig, clock: any BillingClock) async throws -> some ApplicationProtocol {
    let foundation = try await ServiceFoundation(name: "billing", config: config.common)
    let repository = PostgresBillingRepository(client: foundation.database)
    let verifier = foundation.accessTokenVerifier(jwksURL: config.jwksURL, refreshSeconds: config.jwksRefreshSeconds)

    // Billing core (issue 9, part B1): events out, the provider, the lifecycle and its scheduler.
    let tenancy = foundation.client(for: "tenancy", baseURL: config.tenancyURL)
    let auth = foundation.client(for: "auth", baseURL: config.authURL)
    // subscription_changed has no receiver yet: declared, so written nowhere until one subscribes.
    // The trial events go to auth, which mails the tenant's owners.
    let outbox = Outbox(routes: [PaymentCompleted.type: [tenancy], SubscriptionChanged.type: [], TrialEnding.type: [auth], TrialEnded.type: [auth]])
    let relay = OutboxRelay(outbox: outbox, database: foundation.database, metrics: foundation.metrics, logger: foundation.logger)
    let provider = try PaymentProviderFactory.make(config, database: foundation.database, http: foundation.http, clock: clock)
    let ledger = SubscriptionLedger(outbox: outbox)
    let applier = ProviderPaymentApplier(ledger: ledger)
    let payments = CardPayments(database: foundation.database, provider: provider, applier: applier, clock: clock)
    let scheduler = SubscriptionScheduler(
        database: foundation.database, ledger: ledger, applier: applier, provider: provider, clock: clock, graceDays: config.graceDays,
        interval: .seconds(config.schedulerIntervalSeconds), logger: foundation.logger
    )

    let routes = foundation.makeRouter()
    let api = routes.group("api/payments")
    PaymentsController(
        repository: repository, verifier: verifier, catalog: config.plans, provider: provider, locale: config.paymentLocale, clock: clock
    ).addRoutes(to: api)
    CheckoutController(payments: payments, catalog: config.plans, returnURL: config.paymentReturnURL, verifier: verifier).addRoutes(to: api)
    // One client for Stripe's own calls (cancel at period end, the portal): the provider's own under
    // PAYMENT_PROVIDER=stripe; nil without STRIPE_SECRET_KEY.
    let stripe = provider as? StripeClient ?? config.stripe.flatMap { StripeClient(config: $0, http: foundation.http) }
    SubscriptionLifecycleController(
        database: foundation.database, ledger: ledger, catalog: config.plans, clock: clock, verifier: verifier, stripe: stripe
    ).addRoutes(to: api)
    PaymentAdminController(
        database: foundation.database, provider: provider, ledger: ledger, catalog: config.plans, clock: clock, verifier: verifier
    ).addRoutes(to: api)
    PaymentWebhookController(
        database: foundation.database, provider: provider, applier: applier,
        signature: config.webhookSecret.map { MercadoPagoWebhookSignature(secret: $0, tolerance: TimeInterval(config.webhookToleranceSeconds)) },
        clock: clock
    ).addRoutes(to: api)
    // Stripe: the customer portal and its signed events.
    StripeController(
        database: foundation.database, returnURL: config.paymentReturnURL, verifier: verifier,
        applier: applier, stripe: stripe,
        signature: config.stripe?.webhookSecret.map { StripeSignature(secret: $0, tolerance: config.stripe?.webhookTolerance ?? StripeSignature.defaultTolerance, now: { clock.now() }) },
        clock: clock, recurring: StripeRecurringEvents(ledger: ledger, catalog: config.plans)
    ).addRoutes(to: api)
    InternalSubscriptionsController(repository: repository, trialDays: config.trialDays).addRoutes(
        provisioning: foundation.internalGroup(routes, accepting: ["tenancy"]),
        lookups: foundation.internalGroup(routes, accepting: ["tenancy", "chat"])
    )
    // Entitlements and usage: chat asks before each message and reports each answer as an event.
    let entitlements = EntitlementsController(
        subscriptions: repository, usage: PostgresUsageRepository(client: foundation.database), verifier: verifier, now: { clock.now() }
    )
    entitlements.addRoutes(lookups: foundation.internalGroup(routes, accepting: ["chat", "tenancy"]), payments: api)
    EventReceiver(database: foundation.database, handlers: entitlements.eventHandlers(), senders: [MessageAnswered.type: "chat"])
        .addRoutes(to: foundation.internalGroup(routes, accepting: ["chat"]))
    var app = foundation.makeApplication(
        routes: routes, migrations: BillingMigrations.all, services: [verifier, relay, scheduler]
    )
    // After the migrations (registered first): the configured plans become the `plans` rows.
    let database = foundation.database
    let logger = foundation.logger
    let catalog = config.plans
    app.beforeServerStarts {
        try await PlanCatalogStore(database: database).save(catalog, logger: logger)
    }
    return app
}
