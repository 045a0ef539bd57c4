import Logging

/// Settings every service reads: where to listen, how much to accept, how loudly to log.
package struct ServerConfig: Sendable {
    package var host: String
    package var port: Int
    package var maxBodyBytes: Int
    package var logLevel: Logger.Level
    /// Time a graceful shutdown waits for in-flight requests before giving up.
    package var shutdownGraceSeconds: Int

    package init(host: String, port: Int, maxBodyBytes: Int, logLevel: Logger.Level, shutdownGraceSeconds: Int = 25) {
        self.host = host
        self.port = port
        self.maxBodyBytes = maxBodyBytes
        self.logLevel = logLevel
        self.shutdownGraceSeconds = shutdownGraceSeconds
    }

    package init(settings: Settings, defaultPort: Int) throws {
        self.host = settings.string("HTTP_HOST", default: "127.0.0.1")
        self.port = try settings.int("HTTP_PORT", default: defaultPort, range: 0...65535)
        self.maxBodyBytes = try settings.int("MAX_BODY_BYTES", default: 1_048_576, range: 1_024...1_073_741_824)
        self.shutdownGraceSeconds = try settings.int("SHUTDOWN_GRACE_SECONDS", default: 25, range: 1...600)
        let level = settings.string("LOG_LEVEL", default: "info").lowercased()
        guard let parsed = Logger.Level(rawValue: level) else {
            throw ConfigurationError(
                variable: "LOG_LEVEL",
                problem: "must be one of trace, debug, info, notice, warning, error, critical, got '\(level)'"
            )
        }
        self.logLevel = parsed
    }
}
