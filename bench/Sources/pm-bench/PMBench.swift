import ArgumentParser

/// Benchmarks of the engine (`engine`) and of the sandbox exchange with many accounts (`exchange`).
@main
struct PMBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pm-bench",
        abstract: "Benchmarks of the portfolio-margin engine and sandbox (build with -c release; bench/run does).",
        subcommands: [EngineBench.self, ExchangeBench.self])
}
