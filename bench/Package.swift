// swift-tools-version: 6.1
// Benchmarks of the engine and the sandbox exchange, a package of their own (like fuzz/) so that the product
// carries no benchmark code. Run them with `bench/run` (release build); they print what they measured and
// never fail on a time.
import PackageDescription

let package = Package(
    name: "portfolio-margin-bench",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "portfolio-margin", path: ".."),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    ],
    targets: [
        .executableTarget(
            name: "pm-bench",
            dependencies: [
                .product(name: "MarginEngine", package: "portfolio-margin"),
                .product(name: "MarginDefaults", package: "portfolio-margin"),
                .product(name: "MarginStore", package: "portfolio-margin"),
                .product(name: "MarginTestSupport", package: "portfolio-margin"),
                .product(name: "Sandbox", package: "portfolio-margin"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
    ]
)
