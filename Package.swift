// swift-tools-version: 6.1
import PackageDescription

let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "portfolio-margin",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "MarginEngine", targets: ["MarginEngine"]),
        // For the nested fuzz package (fuzz/Package.swift), which can only use products of this one.
        .library(name: "MarginDefaults", targets: ["MarginDefaults"]),
        .library(name: "Sandbox", targets: ["Sandbox"]),
        // For the nested benchmark package (bench/Package.swift): the store and the seeded fixtures.
        .library(name: "MarginStore", targets: ["MarginStore"]),
        .library(name: "MarginTestSupport", targets: ["MarginTestSupport"]),
        .executable(name: "pm", targets: ["pm"]),
        // The load test's client (integration/load), not part of the sandbox.
        .executable(name: "pm-load", targets: ["pm-load"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-numerics.git", from: "1.1.1"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", from: "2.8.1"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        // The metrics API (the sandbox records through it) and its Prometheus backend (wired by pm serve only).
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        // The pure engine: no I/O, no clock, no globals, no logging.
        .target(
            name: "MarginEngine",
            dependencies: [.product(name: "RealModule", package: "swift-numerics")],
            swiftSettings: strictSettings
        ),
        // The shipped catalog, market snapshots and parameter sets, read from the bundle.
        .target(
            name: "MarginDefaults",
            dependencies: ["MarginEngine"],
            resources: [.copy("Resources")],
            swiftSettings: strictSettings
        ),
        // Persistence: GRDB/SQLite database, records, migrations; the exact-decimal ledger at rest.
        .target(
            name: "MarginStore",
            dependencies: [
                "MarginEngine", .product(name: "GRDB", package: "GRDB.swift"), .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ],
            swiftSettings: strictSettings
        ),
        // The ledger on PostgreSQL (PostgresNIO), for several `pm serve` nodes over one database; its own target so
        // that the sandbox library (and its fuzz build) does not link a PostgreSQL client.
        .target(
            name: "MarginStorePostgres",
            dependencies: [
                "MarginStore", "MarginEngine", .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        // What any OKX v5 endpoint offers, read over a transport: market snapshots and catalogs from the public
        // REST API within its rate limits, an account's positions and balances through signed requests.
        .target(
            name: "MarketFeed",
            dependencies: ["MarginEngine", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strictSettings
        ),
        // The transport over HTTP (AsyncHTTPClient), kept out of the sandbox library (and its fuzz build).
        .target(
            name: "MarketFeedHTTP",
            dependencies: ["MarketFeed", "MarginEngine", .product(name: "AsyncHTTPClient", package: "async-http-client")],
            swiftSettings: strictSettings
        ),
        // The OKX v5-compatible sandbox: Hummingbird routes, auth, trading, market simulator, risk loop.
        .target(
            name: "Sandbox",
            dependencies: [
                "MarginEngine", "MarginStore", "MarginDefaults", "MarketFeed",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                // The metrics API only: the backend (Prometheus) is chosen by the executable (docs: README, Layout).
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            resources: [.copy("Web")],
            swiftSettings: strictSettings
        ),
        // Backtests: price paths replayed through the sandbox's exchange core, coverage, outcomes, the report.
        .target(
            name: "Backtest",
            dependencies: ["MarginEngine", "MarginStore", "Sandbox", "MarginDefaults"],
            resources: [.copy("Resources")],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "pm",
            dependencies: [
                "MarginEngine",
                "MarginDefaults",
                "MarginStore",
                "MarginStorePostgres",
                "Sandbox",
                "Backtest",
                "MarketFeed",
                "MarketFeedHTTP",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strictSettings
        ),
        // The load test's client (integration/load), not part of the sandbox.
        .executableTarget(
            name: "pm-load",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            path: "Sources/LoadDriver",
            swiftSettings: strictSettings
        ),
        .target(
            name: "MarginTestSupport",
            dependencies: ["MarginEngine", "MarginDefaults"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "MarginEngineTests",
            dependencies: [
                "MarginEngine", "MarginTestSupport",
                .product(name: "PropertyBased", package: "swift-property-based"),
                .product(name: "RealModule", package: "swift-numerics"),
            ],
            resources: [.copy("Resources")],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "MarginDefaultsTests",
            dependencies: ["MarginDefaults", "MarginEngine", "MarginTestSupport"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "MarginStoreTests",
            dependencies: [
                "MarginStore", "MarginStorePostgres", "MarginEngine", "MarginTestSupport", .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SandboxTests",
            dependencies: [
                "Sandbox", "MarginStore", "MarginStorePostgres", "MarginEngine", "MarginTestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "BacktestTests",
            dependencies: ["Backtest", "Sandbox", "MarginEngine", "MarginDefaults", "MarginTestSupport"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "MarketFeedTests",
            dependencies: ["MarketFeed", "MarketFeedHTTP", "MarginEngine", "MarginTestSupport"],
            resources: [.copy("Resources")],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "pmTests",
            dependencies: ["pm", "MarginTestSupport"],
            swiftSettings: strictSettings
        ),
    ]
)
