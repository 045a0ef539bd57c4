import Configuration
import Foundation

/// A configuration value that is missing or malformed; its message names the environment variable.
package struct ConfigurationError: Error, CustomStringConvertible {
    package let variable: String
    package let problem: String

    package init(variable: String, problem: String) {
        self.variable = variable
        self.problem = problem
    }

    package var description: String { "configuration error: \(variable) \(problem)" }
}

/// Typed access to environment variables through swift-configuration, validated once at start.
///
/// Variables are named as they appear in the environment (`HTTP_PORT`); they are read through
/// the `ConfigReader` (key `http.port`) so tests can pass an in-memory provider.
package struct Settings: Sendable {
    package let reader: ConfigReader

    package init(reader: ConfigReader) {
        self.reader = reader
    }

    /// Settings read from the process environment.
    package static func environment() -> Settings {
        Settings(reader: ConfigReader(provider: EnvironmentVariablesProvider()))
    }

    /// Settings from an explicit dictionary of environment variables (tests, the suite runner).
    package static func variables(_ values: [String: String]) -> Settings {
        Settings(reader: ConfigReader(provider: EnvironmentVariablesProvider(environmentVariables: values)))
    }

    private func key(_ variable: String) -> ConfigKey {
        ConfigKey(variable.lowercased().split(separator: "_").map(String.init))
    }

    package func optionalString(_ variable: String, isSecret: Bool = false) -> String? {
        guard let value = reader.string(forKey: key(variable), isSecret: isSecret)?.trimmingCharacters(in: .whitespaces),
            !value.isEmpty
        else { return nil }
        return value
    }

    package func string(_ variable: String, default defaultValue: String) -> String {
        optionalString(variable) ?? defaultValue
    }

    package func requiredString(_ variable: String, isSecret: Bool = false) throws -> String {
        guard let value = optionalString(variable, isSecret: isSecret) else {
            throw ConfigurationError(variable: variable, problem: "is required but not set")
        }
        return value
    }

    package func int(_ variable: String, default defaultValue: Int, range: ClosedRange<Int>) throws -> Int {
        guard let raw = optionalString(variable) else { return defaultValue }
        guard let value = Int(raw), range.contains(value) else {
            throw ConfigurationError(
                variable: variable,
                problem: "must be a whole number between \(range.lowerBound) and \(range.upperBound), got '\(raw)'"
            )
        }
        return value
    }

    package func bool(_ variable: String, default defaultValue: Bool) throws -> Bool {
        guard let raw = optionalString(variable)?.lowercased() else { return defaultValue }
        switch raw {
        case "1", "true", "yes", "on": return true
        case "0", "false", "no", "off": return false
        default: throw ConfigurationError(variable: variable, problem: "must be true or false, got '\(raw)'")
        }
    }

    /// An absolute http(s) URL without a trailing slash.
    package func url(_ variable: String) throws -> String {
        try Self.validatedURL(try requiredString(variable), variable: variable)
    }

    package func url(_ variable: String, default defaultValue: String) throws -> String {
        try Self.validatedURL(optionalString(variable) ?? defaultValue, variable: variable)
    }

    private static func validatedURL(_ raw: String, variable: String) throws -> String {
        guard let url = URL(string: raw), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
            url.host != nil
        else {
            throw ConfigurationError(variable: variable, problem: "must be an http(s) URL, got '\(raw)'")
        }
        return raw.hasSuffix("/") ? String(raw.dropLast()) : raw
    }

    /// A PEM block, nil when unset. Literal `\n` sequences count as line breaks, for platforms that
    /// cannot put a multi-line value in an environment variable.
    package func pem(_ variable: String, isSecret: Bool = false) throws -> String? {
        guard let raw = optionalString(variable, isSecret: isSecret) else { return nil }
        let value = raw.replacingOccurrences(of: "\\n", with: "\n")
        guard value.hasPrefix("-----BEGIN "), value.contains("-----END ") else {
            throw ConfigurationError(variable: variable, problem: "must be a PEM block (-----BEGIN … -----END …)")
        }
        return value
    }

    package func list(_ variable: String) -> [String] {
        (optionalString(variable) ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
    }
}
