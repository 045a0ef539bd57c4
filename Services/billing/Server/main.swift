import BillingApp
import ServiceCore

let config = ServiceMain.loadConfig(service: "billing") { try BillingConfig(settings: $0) }
LogSetup.bootstrap(level: config.common.server.logLevel)
let app = try await buildBillingApplication(config: config)
try await ServiceMain.run([app], grace: .seconds(config.common.server.shutdownGraceSeconds))
