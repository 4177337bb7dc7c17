// swift-tools-version: 6.1
// libFuzzer targets for the engine and the sandbox. Build and run them with `fuzz/run` (see fuzz/README.md):
// every module is compiled with `-sanitize=fuzzer,address`, which SwiftPM cannot express per target, so the
// flags are given on the command line rather than here.
import PackageDescription

let package = Package(
    name: "portfolio-margin-fuzz",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "portfolio-margin", path: ".."),
    ],
    targets: [
        // The output checks shared by every target: every number finite, the JSON well-formed.
        .target(
            name: "FuzzSupport",
            dependencies: ["CLibFuzzer", .product(name: "MarginEngine", package: "portfolio-margin")]
        ),
        // The declaration of libFuzzer's driver, which each target's `main` calls (FuzzSupport/FuzzDriver.swift).
        .target(name: "CLibFuzzer"),
        // bytes → PositionBuilderRequest → build / graph / compare / precheck, as `pm build` and the endpoint.
        .executableTarget(
            name: "fuzz-position-builder",
            dependencies: [
                "FuzzSupport",
                .product(name: "MarginEngine", package: "portfolio-margin"),
                .product(name: "MarginDefaults", package: "portfolio-margin"),
            ]
        ),
        // first byte picks the loader: market snapshot, parameter set or instrument catalog; then a margin run.
        .executableTarget(
            name: "fuzz-loaders",
            dependencies: [
                "FuzzSupport",
                .product(name: "MarginEngine", package: "portfolio-margin"),
                .product(name: "MarginDefaults", package: "portfolio-margin"),
            ]
        ),
        // an HTTP-like request → APIRequest decoding, JSON body, HMAC authentication with a known key.
        .executableTarget(
            name: "fuzz-rest-auth",
            dependencies: [
                "FuzzSupport",
                .product(name: "MarginEngine", package: "portfolio-margin"),
                .product(name: "MarginDefaults", package: "portfolio-margin"),
                .product(name: "Sandbox", package: "portfolio-margin"),
            ]
        ),
    ]
)
