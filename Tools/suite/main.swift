import AuthApp
import BillingApp
import ChatApp
import Foundation
import GatewayApp
import LocalPostgres
import Logging
import ServiceCore
import ServiceLifecycle
import TenancyApp
import UnixSignals

// `swift run suite`: the whole product on one machine. Starts a throwaway PostgreSQL from the
// machine's binaries under DATA_DIR (unless *_DATABASE_URL are given), then the five services in
// this process, each exactly as its own executable would build it, with the gateway in front.

// First of all: started again as auth's password hashing worker, this process only hashes.
HashingWorkerProcess.serveIfRequested()

let environment = ProcessInfo.processInfo.environment

// `suite bcrypt-time [ROUNDS]`: seconds one password hash takes at BCRYPT_COST (default 12) on one
// core, as sign-in hashes; prints the number and exits (bench/auth.sh's ceiling for logins).
if CommandLine.arguments.dropFirst().first == "bcrypt-time" {
    let cost = Int(environment["BCRYPT_COST"] ?? "12") ?? 12
    let rounds = CommandLine.arguments.dropFirst(2).first.flatMap { Int($0) } ?? 8
    guard (4...31).contains(cost), rounds > 0 else {
        FileHandle.standardError.write(Data("suite: bcrypt-time needs BCRYPT_COST 4-31 and a positive number of rounds\n".utf8))
        exit(2)
    }
    _ = measurePasswordHash(cost: cost, rounds: 1)  // warm-up
    print(String(format: "%.6f", measurePasswordHash(cost: cost, rounds: rounds).inSeconds))
    exit(0)
}

// `suite chat-retrieval-time QUESTIONS_FILE [ROUNDS]`: times chat's knowledge retrieval (the
// statement the builtin responder runs) against CHAT_DATABASE_URL, one search at a time, for each
// `tenant_id<TAB>message` line of the file, ROUNDS (default 5) times after one untimed pass; prints
// JSON `{"seconds": [...], "found": [...], "plans": [...]}` and exits (bench/chat.sh).
if CommandLine.arguments.dropFirst().first == "chat-retrieval-time" {
    let arguments = Array(CommandLine.arguments.dropFirst(2))
    guard let path = arguments.first, let url = environment["CHAT_DATABASE_URL"], let text = try? String(contentsOfFile: path, encoding: .utf8)
    else {
        FileHandle.standardError.write(Data("suite: chat-retrieval-time needs CHAT_DATABASE_URL and a readable questions file\n".utf8))
        exit(2)
    }
    let questions = text.split(separator: "\n").compactMap { line -> RetrievalTiming.Question? in
        let fields = line.split(separator: "\t", maxSplits: 1)
        guard fields.count == 2, let tenant = UUID(uuidString: String(fields[0])) else { return nil }
        return RetrievalTiming.Question(tenantID: tenant, message: String(fields[1]))
    }
    do {
        let result = try await RetrievalTiming.run(
            databaseURL: url, questions: questions, rounds: arguments.dropFirst().first.flatMap { Int($0) } ?? 5, logger: {
                var quiet = Logger(label: "retrieval")
                quiet.logLevel = .warning
                return quiet
            }()
        )
        let json = try JSONSerialization.data(withJSONObject: ["seconds": result.seconds, "found": result.found, "plans": result.plans])
        FileHandle.standardOutput.write(json)
        exit(0)
    } catch {
        FileHandle.standardError.write(Data("suite: chat-retrieval-time failed: \(error)\n".utf8))
        exit(1)
    }
}

/// Writes straight to standard output (not through `print`'s buffer), so lines appear in order with the logs.
func say(_ message: String) {
    FileHandle.standardOutput.write(Data((message + "\n").utf8))
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("suite: \(message)\n".utf8))
    exit(1)
}

func port(_ variable: String, _ defaultValue: Int) -> Int {
    guard let raw = environment[variable], !raw.isEmpty else { return defaultValue }
    guard let value = Int(raw), (1...65535).contains(value) else { fail("\(variable) must be a port number, got '\(raw)'") }
    return value
}

let databases = ["auth", "tenancy", "billing", "chat"]
let gatewayHost = environment["GATEWAY_HOST"] ?? "127.0.0.1"
let ports = (
    gateway: port("GATEWAY_PORT", 8080), auth: port("AUTH_PORT", 8081), tenancy: port("TENANCY_PORT", 8082),
    billing: port("BILLING_PORT", 8083), chat: port("CHAT_PORT", 8084), gatewayAdmin: port("GATEWAY_ADMIN_PORT", 9080)
)
let logLevel = Logger.Level(rawValue: environment["LOG_LEVEL"] ?? "info") ?? .info
LogSetup.bootstrap(level: logLevel)
var logger = Logger(label: "suite")
logger.logLevel = logLevel

// Databases: given, or a local cluster kept under DATA_DIR between runs.
let givenURLs = databases.compactMap { name in environment["\(name.uppercased())_DATABASE_URL"].map { (name, $0) } }
var chosenURLs: [String: String] = [:]
var cluster: LocalPostgresCluster?
if givenURLs.count == databases.count {
    chosenURLs = Dictionary(uniqueKeysWithValues: givenURLs)
} else if !givenURLs.isEmpty {
    let missing = databases.filter { name in !givenURLs.contains { $0.0 == name } }.map { "\($0.uppercased())_DATABASE_URL" }
    fail("set all four database URLs or none; missing \(missing.joined(separator: ", "))")
} else {
    let binaries: String
    do {
        binaries = try LocalPostgresCluster.locateBinaries()
    } catch {
        fail("\(error)")
    }
    func localCluster(in dataDirectory: String) -> LocalPostgresCluster {
        LocalPostgresCluster(
            directory: URL(fileURLWithPath: dataDirectory).standardizedFileURL.path + "/postgres", port: port("PG_PORT", 54329),
            binDirectory: binaries
        )
    }
    var local = localCluster(in: environment["DATA_DIR"] ?? ".data")
    if environment["DATA_DIR"] == nil, !local.isReachableByServer {
        // As root in a folder the postgres user cannot enter (a clone under /root): keep the data
        // where it can, one folder per checkout, and say so.
        let checkout = FileManager.default.currentDirectoryPath
        let key = String(checkout.utf8.reduce(UInt64(14_695_981_039_346_656_037)) { ($0 ^ UInt64($1)) &* 1_099_511_628_211 }, radix: 16)
        local = localCluster(in: "/var/tmp/chat-agent-suite-\(key)")
        say("suite: the postgres user cannot enter \(checkout); keeping the database in \(local.directory) (set DATA_DIR to choose)")
    }
    say("suite: starting PostgreSQL from \(binaries) in \(local.directory) on port \(local.port)\(local.isInitialized ? " (reusing data)" : "")")
    do {
        try local.start()
        try await local.createDatabases(databases, logger: logger)
    } catch {
        local.stop()
        fail("PostgreSQL did not start: \(error)\nsee \(local.logPath)")
    }
    cluster = local
    chosenURLs = Dictionary(uniqueKeysWithValues: databases.map { ($0, local.url(database: $0)) })
}
let databaseURLs = chosenURLs

// A key pair per service for this run: each service gets its own private key and every other's
// public key (each internal route then names the callers it answers). Caller tokens live seconds,
// so nothing needs these keys after the run.
let serviceKeys = Dictionary(uniqueKeysWithValues: CommonConfig.serviceNames.map { ($0, CallerIdentity.makeKeyPair()) })
let publicKeys = Dictionary(uniqueKeysWithValues: serviceKeys.map { ("\($0.key.uppercased())_PUBLIC_KEY", $0.value.publicKeyPEM) })
let authURL = "http://127.0.0.1:\(ports.auth)"
let shared: [String: String] = publicKeys.merging([
    "JWKS_URL": "\(authURL)/.well-known/jwks.json",
    "AUTH_URL": authURL,
    "TENANCY_URL": "http://127.0.0.1:\(ports.tenancy)",
    "BILLING_URL": "http://127.0.0.1:\(ports.billing)",
    "CHAT_URL": "http://127.0.0.1:\(ports.chat)",
]) { _, url in url }

/// A service's environment: the suite's own (so LOG_LEVEL, BCRYPT_COST, RATE_LIMIT_* … apply), plus its place in the suite.
func settings(_ service: String, host: String = "127.0.0.1", port: Int, database: String? = nil) -> Settings {
    var variables = environment.merging(shared) { _, suite in suite }
    variables["SERVICE_KEY"] = serviceKeys[service]!.privateKeyPEM
    variables["HTTP_HOST"] = host
    variables["HTTP_PORT"] = String(port)
    variables["DATABASE_URL"] = database.flatMap { databaseURLs[$0] }
    // chat's files never share tenancy's directory (its branding sweep removes files it does not know).
    if service == "chat", let directory = environment["STORAGE_DIR"] { variables["STORAGE_DIR"] = directory + "-chat" }
    return Settings.variables(variables)
}

let services: [any Service]
do {
    let auth = try await buildAuthApplication(config: AuthConfig(settings: settings("auth", port: ports.auth, database: "auth")))
    let billing = try await buildBillingApplication(config: BillingConfig(settings: settings("billing", port: ports.billing, database: "billing")))
    let tenancy = try await buildTenancyApplication(config: TenancyConfig(settings: settings("tenancy", port: ports.tenancy, database: "tenancy")))
    let chat = try await buildChatApplication(config: ChatConfig(settings: settings("chat", port: ports.chat, database: "chat")))
    let gateway = try await buildGatewayApplication(
        config: GatewayConfig(settings: settings("gateway", host: gatewayHost, port: ports.gateway))
    ) { _ in
        let url = "http://\(gatewayHost == "0.0.0.0" ? "127.0.0.1" : gatewayHost):\(ports.gateway)"
        say(
            """

            Suite running. Gateway: \(url)   (auth :\(ports.auth), tenancy :\(ports.tenancy), billing :\(ports.billing), chat :\(ports.chat))
            Gateway admin (/metrics, detailed /health): http://127.0.0.1:\(ports.gatewayAdmin)
            Try:
              curl -s \(url)/api/payments/plans
              curl -s -X POST \(url)/api/onboarding/register -H 'Content-Type: application/json' \\
                   -d '{"email":"owner@example.com","password":"Passw0rd!","account_name":"Acme"}'
            Stop with Ctrl-C.

            """
        )
    }
    services = [auth, billing, tenancy, chat, gateway]
} catch let error as ConfigurationError {
    cluster?.stop()
    fail("\(error)")
}

var exitCode: Int32 = 0
do {
    try await ServiceMain.run(services, grace: .seconds(25), logger: logger)
} catch {
    logger.error("suite stopped with an error", metadata: ["error": "\(error)"])
    exitCode = 1
}
if let cluster {
    say("suite: stopping PostgreSQL (data kept in \(cluster.directory))")
    cluster.stop()
}
exit(exitCode)
