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
    return foundation.makeApplication(routes: routes, migrations: ChatMigrations.all)
}
