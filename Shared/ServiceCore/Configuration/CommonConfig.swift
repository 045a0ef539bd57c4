/// What every database-backed service is configured with.
package struct CommonConfig: Sendable {
    package var server: ServerConfig
    package var database: DatabaseConfig
    package var serviceTokenSecret: String

    package init(server: ServerConfig, database: DatabaseConfig, serviceTokenSecret: String) {
        self.server = server
        self.database = database
        self.serviceTokenSecret = serviceTokenSecret
    }

    package init(settings: Settings, defaultPort: Int) throws {
        self.server = try ServerConfig(settings: settings, defaultPort: defaultPort)
        self.database = try DatabaseConfig(settings: settings)
        self.serviceTokenSecret = try Self.serviceTokenSecret(settings)
    }

    package static func serviceTokenSecret(_ settings: Settings) throws -> String {
        let secret = try settings.requiredString("SERVICE_TOKEN_SECRET", isSecret: true)
        guard secret.utf8.count >= ServiceTokens.minimumSecretLength else {
            throw ConfigurationError(
                variable: "SERVICE_TOKEN_SECRET",
                problem: "must be at least \(ServiceTokens.minimumSecretLength) characters"
            )
        }
        return secret
    }
}
