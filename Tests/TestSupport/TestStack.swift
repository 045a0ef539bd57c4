import AuthApp
import BillingApp
import ChatApp
#if canImport(Glibc)
import Glibc
#endif
import Foundation
import GatewayApp
import HTTPTypes
import NIOCore
import NIOHTTP1
import LocalPostgres
import Logging
import ServiceCore
import ServiceLifecycle
import Synchronization
import TenancyApp

/// The five services.
package enum ServiceName: String, CaseIterable, Sendable {
    case auth, billing, tenancy, chat, gateway

    /// The database-owning services.
    package static var withDatabase: [ServiceName] { [.auth, .billing, .tenancy, .chat] }
}

/// A set of real services for one test: its own databases, free loopback ports, a key per
/// service. Services run in this process (`start`) or as the real executables (see `ChildServices`),
/// configured by the same environment either way.
package final class TestStack: Sendable {
    /// Each service's own key pair: the private half goes to that service only, the public half to
    /// every other (each internal route then decides which callers it answers).
    package static let serviceKeys: [ServiceName: (privateKeyPEM: String, publicKeyPEM: String)] = Dictionary(
        uniqueKeysWithValues: ServiceName.allCases.map { ($0, CallerIdentity.makeKeyPair()) }
    )
    package static var gatewayKeys: (privateKeyPEM: String, publicKeyPEM: String) { serviceKeys[.gateway]! }

    package let ports: [ServiceName: Int]
    /// The gateway's admin port (`/metrics`, detailed `/health`).
    package let adminPort: Int
    package let databases: [ServiceName: DatabaseConfig]
    package let overrides: [String: String]
    private let running = Mutex<[ServiceName: ServiceRunner]>([:])

    private init(ports: [ServiceName: Int], adminPort: Int, databases: [ServiceName: DatabaseConfig], overrides: [String: String]) {
        self.ports = ports
        self.adminPort = adminPort
        self.databases = databases
        self.overrides = overrides
    }

    /// Fresh databases and ports; nothing started yet.
    /// - Parameter databases: databases to use instead of fresh ones on the shared test server.
    package static func make(overrides: [String: String] = [:], databases given: [ServiceName: DatabaseConfig] = [:]) async throws -> TestStack {
        var databases = given
        for service in ServiceName.withDatabase where databases[service] == nil {
            databases[service] = try await TestPostgres.freshDatabase(service.rawValue)
        }
        var ports: [ServiceName: Int] = [:]
        for service in ServiceName.allCases { ports[service] = try TestPorts.next() }
        return TestStack(ports: ports, adminPort: try TestPorts.next(), databases: databases, overrides: overrides)
    }

    package func url(_ service: ServiceName) -> String { "http://127.0.0.1:\(ports[service]!)" }

    package var adminURL: String { "http://127.0.0.1:\(adminPort)" }

    /// The environment a service is started with, the same for in-process and child-process runs.
    package func environment(for service: ServiceName) -> [String: String] {
        var variables: [String: String] = [
            "HTTP_HOST": "127.0.0.1",
            "HTTP_PORT": String(ports[service]!),
            "LOG_LEVEL": "warning",
            "JWKS_URL": url(.auth) + "/.well-known/jwks.json",
            "AUTH_URL": url(.auth),
            "TENANCY_URL": url(.tenancy),
            "BILLING_URL": url(.billing),
            "CHAT_URL": url(.chat),
            "BCRYPT_COST": "4",
            "CHAT_STREAM_TOKEN_DELAY_MS": "100",
            "HEALTH_CHECK_INTERVAL_SECONDS": "1",
            "SHUTDOWN_GRACE_SECONDS": "5",
            "GATEWAY_ADMIN_PORT": String(adminPort),
            // Enough for a test; forty stacks at once would otherwise open hundreds.
            "DATABASE_MAX_CONNECTIONS": "6",
            // The whole suite's services share one machine with every other test: a `SELECT 1` can
            // wait over a second for a thread without the database being down (two such checks in a
            // row answered 503 across a test). An outage still shows at once: a refused connection fails fast.
            "DATABASE_CHECK_TIMEOUT_MS": "5000",
            // tenancy's branding files: a directory of this stack's own.
            "STORAGE_DIR": NSTemporaryDirectory() + "suite-storage-\(getpid())-\(ports[.tenancy]!)",
        ]
        // chat keeps its knowledge-base files and attachments in a directory of its own: tenancy's
        // branding sweep removes whatever in its directory no branding row names.
        if service == .chat { variables["STORAGE_DIR"] = NSTemporaryDirectory() + "suite-chat-storage-\(getpid())-\(ports[.chat]!)" }
        // auth hashes in a worker process, as deployed: the test runner cannot be that worker, the
        // built `auth` executable can (without it, auth falls back to threads).
        let worker = "\(ChildServices.binDirectory)/auth"
        if service == .auth, FileManager.default.isExecutableFile(atPath: worker) { variables["PASSWORD_HASH_WORKER_EXECUTABLE"] = worker }
        variables["SERVICE_KEY"] = Self.serviceKeys[service]!.privateKeyPEM
        for other in ServiceName.allCases where other != service {
            variables["\(other.rawValue.uppercased())_PUBLIC_KEY"] = Self.serviceKeys[other]!.publicKeyPEM
        }
        if let database = databases[service] {
            let password = database.password.map { ":\($0)" } ?? ""
            variables["DATABASE_URL"] = "postgres://\(database.username)\(password)@\(database.host):\(database.port)/\(database.database)"
        }
        return variables.merging(overrides) { _, override in override }
    }

    /// Builds the services in this process, starts them and waits until each answers `/live`.
    package func start(_ services: ServiceName...) async throws {
        for service in services {
            let runner = ServiceRunner([try await Self.build(service, environment: environment(for: service))])
            running.withLock { $0[service] = runner }
            try await TestHTTP.waitUntilLive(url(service))
        }
    }

    /// Starts one more replica of `service` in this process, on a port of its own but otherwise
    /// configured as the stack's (its database included); the caller stops it.
    package func startReplica(of service: ServiceName) async throws -> (url: String, runner: ServiceRunner) {
        let port = try TestPorts.next()
        var variables = environment(for: service)
        variables["HTTP_PORT"] = String(port)
        let runner = ServiceRunner([try await Self.build(service, environment: variables)])
        let url = "http://127.0.0.1:\(port)"
        do {
            try await TestHTTP.waitUntilLive(url)
        } catch {
            await runner.stop()
            throw error
        }
        return (url, runner)
    }

    private static func build(_ service: ServiceName, environment: [String: String]) async throws -> any Service {
        let settings = Settings.variables(environment)
        switch service {
        case .auth: return try await buildAuthApplication(config: AuthConfig(settings: settings))
        case .billing: return try await buildBillingApplication(config: BillingConfig(settings: settings))
        case .tenancy: return try await buildTenancyApplication(config: TenancyConfig(settings: settings))
        case .chat: return try await buildChatApplication(config: ChatConfig(settings: settings))
        case .gateway: return try await buildGatewayApplication(config: GatewayConfig(settings: settings))
        }
    }

    /// Stops one service gracefully (as SIGTERM would).
    package func stop(_ service: ServiceName) async {
        guard let runner = running.withLock({ $0.removeValue(forKey: service) }) else { return }
        await runner.stop()
        await waitUntilClosed(service)
    }

    /// The service group returns before NIO has closed the listening socket; a "stopped" service
    /// that still accepts connections would make down-service tests flaky, so wait for the port.
    private func waitUntilClosed(_ service: ServiceName) async {
        let deadline = ContinuousClock.now + .seconds(10)
        while !ChildProcess.isFree(port: ports[service]!), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    package func stopAll() async {
        let runners = running.withLock { running in
            defer { running.removeAll() }
            return Array(running.values)
        }
        for runner in runners { await runner.stop() }
        for service in ServiceName.allCases { await waitUntilClosed(service) }
    }

    /// Starts `services`, runs `body`, and stops everything whatever happens.
    package static func with<T: Sendable>(
        _ services: ServiceName...,
        overrides: [String: String] = [:],
        databases: [ServiceName: DatabaseConfig] = [:],
        _ body: (TestStack) async throws -> T
    ) async throws -> T {
        let stack = try await make(overrides: overrides, databases: databases)
        do {
            for service in services { try await stack.start(service) }
            let result = try await body(stack)
            await stack.stopAll()
            return result
        } catch {
            await stack.stopAll()
            throw error
        }
    }
}

extension TestStack {
    /// The header of a call to `url` on `callee`'s internal routes made as `caller` makes it: a
    /// caller token of that service's key for this very request.
    package static func callerHeaders(
        as caller: ServiceName, to callee: ServiceName, _ method: HTTPRequest.Method, _ url: String, body: [UInt8]? = nil
    ) async throws -> [String: String] {
        let identity = try await CallerIdentity(name: caller.rawValue, privateKeyPEM: serviceKeys[caller]!.privateKeyPEM)
        let token = try await identity.token(
            for: callee.rawValue, method: method, target: InternalClient.requestTarget(of: url), body: body.map { ByteBuffer(bytes: $0) }
        )
        return ["X-Caller-Token": token]
    }

    /// Calls `callee`'s internal route `path` as `caller` would, with `json` (or `raw`) as the body.
    package func callInternal(
        _ method: HTTPRequest.Method, _ callee: ServiceName, _ path: String, as caller: ServiceName, json: (any Encodable)? = nil,
        raw: String? = nil
    ) async throws -> TestResponse {
        try await Self.callInternal(method, url(callee) + path, callee: callee, as: caller, json: json, raw: raw)
    }

    /// Calls the internal route at `url` (of `callee`) as `caller` would, with `json` (or `raw`) as the body.
    package static func callInternal(
        _ method: HTTPRequest.Method, _ url: String, callee: ServiceName, as caller: ServiceName, json: (any Encodable)? = nil,
        raw: String? = nil
    ) async throws -> TestResponse {
        let body = try json.map { Array(try JSONCoding.encoder.encode($0)) } ?? raw.map { Array($0.utf8) }
        let headers = try await callerHeaders(as: caller, to: callee, method, url, body: body)
        return try await TestHTTP.send(HTTPMethod(rawValue: method.rawValue), url, headers: headers, bytes: body)
    }
}

/// Runs services in a ServiceGroup on a background task until `stop()`.
package final class ServiceRunner: Sendable {
    private let group: ServiceGroup
    private let task: Task<Void, any Error>

    package init(_ services: [any Service]) {
        let group = ServiceGroup(configuration: .init(services: services, logger: .init(label: "test-runner")))
        self.group = group
        self.task = Task { try await group.run() }
    }

    package func stop() async {
        await group.triggerGracefulShutdown()
        _ = try? await task.value
    }
}

/// Ports for test services, never handed out twice in one test process and below the kernel's
/// ephemeral range: a stopped service's port must stay dead (not be taken over by another test's
/// service or outgoing connection), or "service down" tests would talk to a stranger.
package enum TestPorts {
    private static let counter = Mutex(20_000 + Int(getpid() % 400) * 20)

    package static func next() throws -> Int {
        for _ in 0..<2_000 {
            let candidate = counter.withLock { port in
                defer { port = port >= 32_000 ? 20_000 : port + 1 }
                return port
            }
            if ChildProcess.isFree(port: candidate) { return candidate }
        }
        throw FixtureError(description: "no free port for a test service")
    }
}
