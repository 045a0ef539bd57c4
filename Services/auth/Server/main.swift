import AuthApp
import ServiceCore

// First of all: started again as the password hashing worker, this process only hashes.
HashingWorkerProcess.serveIfRequested()

let config = ServiceMain.loadConfig(service: "auth") { try AuthConfig(settings: $0) }
LogSetup.bootstrap(level: config.common.server.logLevel)
let app = try await buildAuthApplication(config: config)
try await ServiceMain.run([app], grace: .seconds(config.common.server.shutdownGraceSeconds))
