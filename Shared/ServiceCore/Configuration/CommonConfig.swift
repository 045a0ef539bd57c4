/// What every database-backed service is configured with.
package struct CommonConfig: Sendable {
    package var server: ServerConfig
    package var database: DatabaseConfig
    /// This service's own P-256 private key (PEM): it signs the service's calls to other services.
    package var serviceKeyPEM: String
    /// Public keys (PEM) of the services that may call this one, by service name. Which of them
    /// a route accepts is decided route by route; a service without a key here is refused on all.
    package var callerPublicKeys: [String: String]

    /// The services of the suite, by the names their tokens carry and their keys are configured under.
    package static let serviceNames = ["auth", "tenancy", "billing", "chat", "gateway"]

    package init(server: ServerConfig, database: DatabaseConfig, serviceKeyPEM: String, callerPublicKeys: [String: String]) {
        self.server = server
        self.database = database
        self.serviceKeyPEM = serviceKeyPEM
        self.callerPublicKeys = callerPublicKeys
    }

    package init(settings: Settings, defaultPort: Int) throws {
        self.server = try ServerConfig(settings: settings, defaultPort: defaultPort)
        self.database = try DatabaseConfig(settings: settings)
        guard let key = try settings.pem("SERVICE_KEY", isSecret: true) else {
            throw ConfigurationError(
                variable: "SERVICE_KEY",
                problem: "is required: this service's own P-256 private key (PEM), which signs its calls to other services"
            )
        }
        self.serviceKeyPEM = key
        var callers: [String: String] = [:]
        for name in Self.serviceNames {
            callers[name] = try settings.pem("\(name.uppercased())_PUBLIC_KEY")
        }
        self.callerPublicKeys = callers
    }
}
