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
        .executable(name: "pm", targets: ["pm"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-numerics.git", from: "1.1.1"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
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
        .executableTarget(
            name: "pm",
            dependencies: [
                "MarginEngine",
                "MarginDefaults",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
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
            name: "pmTests",
            dependencies: ["pm", "MarginTestSupport"],
            swiftSettings: strictSettings
        ),
    ]
)
