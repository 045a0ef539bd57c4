import Hummingbird
import InternalAPI
import ServiceCore

/// Builds the chat service: widget sessions and the streaming chat endpoint.
package func buildChatApplication(config: ChatConfig) async throws -> some ApplicationProtocol {
    let foundation = try await ServiceFoundation(name: "chat", config: config.common)
    let sessions = PostgresSessionRepository(client: foundation.database)
    let tenancy = foundation.client(for: "tenancy", baseURL: config.tenancyURL)
    let directory = TenantDirectory(tenancy: tenancy, ttl: .seconds(config.tenantCacheSeconds))
    let agents = InternalLookupCache<AgentConfiguration>(client: tenancy, ttl: .seconds(config.agentCacheSeconds))
    let responder = GreetingResponder(tokenDelay: .milliseconds(config.streamTokenDelayMilliseconds))

    let routes = foundation.makeRouter()
    SessionsController(sessions: sessions, directory: directory, maxAgeDays: config.sessionMaxAgeDays)
        .addRoutes(to: routes.group("api/sessions"))
    ChatKitController(sessions: sessions, directory: directory, agents: agents, responder: responder).addRoutes(to: routes)
    // tenancy's: usage counts for its administration, and its tenant events (a suspended tenant's
    // cached entry is dropped, so its sessions stop at once).
    let fromTenancy = foundation.internalGroup(routes, accepting: ["tenancy"])
    InternalUsageController(database: foundation.database).addRoutes(to: fromTenancy)
    let forget: EventReceiver.Handler = { event, _, _ in directory.forget(try event.decodePayload(as: TenantChanged.self).tenantId) }
    EventReceiver(database: foundation.database, handlers: Dictionary(uniqueKeysWithValues: TenantChanged.types.map { ($0, forget) }))
        .addRoutes(to: fromTenancy)
    return foundation.makeApplication(routes: routes, migrations: ChatMigrations.all)
}
