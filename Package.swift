// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let hummingbird: Target.Dependency = .product(name: "Hummingbird", package: "hummingbird")
let postgres: Target.Dependency = .product(name: "PostgresNIO", package: "postgres-nio")
let httpClient: Target.Dependency = .product(name: "AsyncHTTPClient", package: "async-http-client")
let jwt: Target.Dependency = .product(name: "JWTKit", package: "jwt-kit")
let logging: Target.Dependency = .product(name: "Logging", package: "swift-log")
let lifecycle: Target.Dependency = .product(name: "ServiceLifecycle", package: "swift-service-lifecycle")
let nioCore: Target.Dependency = .product(name: "NIOCore", package: "swift-nio")
let httpTypes: Target.Dependency = .product(name: "HTTPTypes", package: "swift-http-types")
let routerTesting: [Target.Dependency] = [hummingbird, .product(name: "HummingbirdTesting", package: "hummingbird")]

/// A service: library `<Name>App` (Services/<dir>/App) and executable product `<dir>` (Services/<dir>/Server).
func service(_ directory: String, app: String, dependencies: [Target.Dependency] = []) -> [Target] {
    [
        .target(
            name: app,
            dependencies: ["ServiceCore", "InternalAPI", hummingbird, postgres, httpClient, logging, lifecycle, nioCore, httpTypes]
                + dependencies,
            path: "Services/\(directory)/App",
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "\(directory)-server",
            dependencies: [.target(name: app), "ServiceCore", logging],
            path: "Services/\(directory)/Server",
            swiftSettings: swiftSettings
        ),
    ]
}

/// billing's per-route tests drive its router in process; they and the live flow sign webhooks as providers do.
func billingTestDependencies(_ module: String) -> [Target.Dependency] {
    let crypto: [Target.Dependency] = [.product(name: "Crypto", package: "swift-crypto")]
    switch module {
    case "BillingApp": return routerTesting + crypto
    case "EndToEnd": return crypto
    default: return []
    }
}

func serviceProduct(_ directory: String) -> Product {
    .executable(name: directory, targets: ["\(directory)-server"])
}

let package = Package(
    name: "chat-agent-suite",
    platforms: [.macOS(.v15)],
    products: [
        serviceProduct("auth"),
        serviceProduct("billing"),
        serviceProduct("tenancy"),
        serviceProduct("chat"),
        serviceProduct("gateway"),
        .executable(name: "suite", targets: ["Suite"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.8.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-configuration.git", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        // Branding uploads arrive as multipart/form-data; tenancy parses them with this (only tenancy uses it).
        .package(url: "https://github.com/vapor/multipart-kit.git", from: "4.7.1"),
        // chat's knowledge base reads DOCX files (zip archives) with this; multipart-kit parses its uploads.
        .package(url: "https://github.com/weichsel/ZIPFoundation.git", from: "0.9.20"),
    ],
    targets: [
        .target(
            name: "ServiceCore",
            dependencies: [
                "InternalAPI", hummingbird, postgres, httpClient, jwt, logging, lifecycle, nioCore, httpTypes,
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                "CCurl", "CCurlShim",
            ],
            path: "Shared/ServiceCore",
            swiftSettings: swiftSettings
        ),
        .target(name: "InternalAPI", path: "Shared/InternalAPI", swiftSettings: swiftSettings),
        // The system libcurl, for the SMTP mail transport, and fixed-argument wrappers of its
        // variadic functions (Swift cannot call C variadics).
        .systemLibrary(name: "CCurl", path: "Shared/CCurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .target(name: "CCurlShim", dependencies: ["CCurl"], path: "Shared/CCurlShim"),
        .target(
            name: "LocalPostgres",
            dependencies: [postgres, logging],
            path: "Shared/LocalPostgres",
            swiftSettings: swiftSettings
        ),
    ]
        + service(
            "auth",
            app: "AuthApp",
            dependencies: [
                jwt, .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "Crypto", package: "swift-crypto"),
                // The password-hashing worker process is started with `ChildProcess` (posix_spawn, pipes).
                .product(name: "NIOPosix", package: "swift-nio"), "LocalPostgres",
            ]
        )
        + service(
            "billing", app: "BillingApp",
            dependencies: [.product(name: "Crypto", package: "swift-crypto"), .product(name: "NIOHTTP1", package: "swift-nio")]
        )
        + service(
            "tenancy",
            app: "TenancyApp",
            dependencies: [
                .product(name: "MultipartKit", package: "multipart-kit"), .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        )
        + service(
            "chat",
            app: "ChatApp",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"), .product(name: "MultipartKit", package: "multipart-kit"),
                .product(name: "ZIPFoundation", package: "ZIPFoundation"), .product(name: "NIOPosix", package: "swift-nio"),
                // Its `ChildProcess` runs pdftotext (posix_spawn, no inherited sockets, waitpid with a deadline).
                "LocalPostgres",
            ]
        )
        + service(
            "gateway",
            app: "GatewayApp",
            dependencies: [
                jwt, .product(name: "HummingbirdCore", package: "hummingbird"), .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        )
        + [
            .executableTarget(
                name: "Suite",
                dependencies: ["AuthApp", "BillingApp", "TenancyApp", "ChatApp", "GatewayApp", "ServiceCore", "LocalPostgres", logging, lifecycle],
                path: "Tools/suite",
                swiftSettings: swiftSettings
            ),
            .target(
                name: "TestSupport",
                dependencies: [
                    "ServiceCore", "InternalAPI", "LocalPostgres", "AuthApp", "BillingApp", "TenancyApp", "ChatApp", "GatewayApp", postgres, httpClient, httpTypes,
                    jwt, logging, lifecycle, nioCore, .product(name: "NIOHTTP1", package: "swift-nio"),
                    .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOWebSocket", package: "swift-nio"),
                ],
                path: "Tests/TestSupport",
                // The SMTP server the mail tests send to (Python, aiosmtpd), run from the source tree.
                exclude: ["smtp_test_server.py", "smtp_test_server.requirements.txt"],
                swiftSettings: swiftSettings
            ),
        ]
        + ["ServiceCore", "AuthApp", "BillingApp", "TenancyApp", "ChatApp", "GatewayApp", "EndToEnd"].map { module in
            .testTarget(
                name: "\(module)Tests",
                dependencies: [
                    "TestSupport", "ServiceCore", "InternalAPI", "LocalPostgres", postgres, httpClient, jwt, nioCore, httpTypes, logging,
                    .product(name: "NIOHTTP1", package: "swift-nio"),
                ] + (module == "EndToEnd" || module == "ServiceCore" ? [] : [.target(name: module)])
                    // ServiceCore's tests stand up a small subscriber service and read the relay's metrics.
                    + (module == "ServiceCore" ? [hummingbird, .product(name: "Prometheus", package: "swift-prometheus")] : [])
                    // tenancy's per-route tests drive its router in process (HummingbirdTesting's `.router`);
                    // its registration tests key fingerprints as the running service does.
                    + (module == "TenancyApp" ? routerTesting + [.product(name: "Crypto", package: "swift-crypto")] : [])
                    + billingTestDependencies(module)
                    // chat's knowledge-base and attachment tests drive its router in process too.
                    + (module == "ChatApp" ? routerTesting : []),
                path: "Tests/\(module)Tests",
                swiftSettings: swiftSettings
            )
        }
)
