import ServiceCore
import TenancyApp

let config = ServiceMain.loadConfig(service: "tenancy") { try TenancyConfig(settings: $0) }
LogSetup.bootstrap(level: config.common.server.logLevel)
let app = try await buildTenancyApplication(config: config)
try await ServiceMain.run([app], grace: .seconds(config.common.server.shutdownGraceSeconds))
