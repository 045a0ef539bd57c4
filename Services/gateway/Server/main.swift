import GatewayApp
import ServiceCore

let config = ServiceMain.loadConfig(service: "gateway") { try GatewayConfig(settings: $0) }
LogSetup.bootstrap(level: config.server.logLevel)
let app = try await buildGatewayApplication(config: config)
try await ServiceMain.run([app], grace: .seconds(config.server.shutdownGraceSeconds))
