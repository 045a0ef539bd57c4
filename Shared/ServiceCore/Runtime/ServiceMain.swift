import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import UnixSignals

/// Start-up shared by the service executables.
package enum ServiceMain {
    /// Reads the configuration once; a bad or missing value stops the process with one line naming it.
    package static func loadConfig<Config>(service: String, _ load: (Settings) throws -> Config) -> Config {
        do {
            return try load(Settings.environment())
        } catch {
            FileHandle.standardError.write(Data("\(service): \(error)\n".utf8))
            exit(2)
        }
    }

    /// Runs the services until SIGTERM/SIGINT, then drains in-flight requests for at most `grace`.
    package static func run(_ services: [any Service], grace: Duration, logger: Logger = Logger(label: "lifecycle")) async throws {
        var configuration = ServiceGroupConfiguration(
            services: services.map { .init(service: $0) },
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
        configuration.maximumGracefulShutdownDuration = grace
        try await ServiceGroup(configuration: configuration).run()
    }
}
