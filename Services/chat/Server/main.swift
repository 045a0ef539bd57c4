import ChatApp
import ServiceCore

let config = ServiceMain.loadConfig(service: "chat") { try ChatConfig(settings: $0) }
LogSetup.bootstrap(level: config.common.server.logLevel)
let app = try await buildChatApplication(config: config)
try await ServiceMain.run([app], grace: .seconds(config.common.server.shutdownGraceSeconds))
