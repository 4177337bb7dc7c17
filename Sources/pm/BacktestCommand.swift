import ArgumentParser
import Backtest
import Foundation
import MarginDefaults
import MarginEngine

/// `pm backtest`: a price path replayed through the exchange core for a population, in PM and classic.
struct BacktestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backtest",
        abstract: "Replay a real price path through the exchange core: coverage of the MMR, liquidations, bad debt, insurance fund.",
        discussion: """
            Each --path is a CSV of bars (timestamp_utc,…,close; data/crash_paths, data/long_series), one per coin; the coin \
            is the file name's first word (btc_usdt_… → BTC) unless given as COIN=FILE. Files are aligned on the instants they \
            share; nothing is filled in or extrapolated. Each coin's moves (close over first close) are applied to the base \
            market snapshot, whose time starts the path. The population is generated (--accounts, --seed: a documented mix of \
            directional, hedged, basis, option-selling and option-buying books) or given (--population: Position Builder \
            requests, one account each). Every account runs in portfolio margin and in classic under each --params set, on \
            its own exchange (pm serve's code: funding, interest, expiries, the risk loop, the liquidation planner, the \
            insurance fund). Coverage compares each account's loss over the horizon with the MMR it held at the window's \
            start, books held fixed. --windows scores every window of a long series from the base market instead of \
            replaying it. Method: docs/backtest.md.
            """)

    @Option(name: .customLong("path"), help: ArgumentHelp("A price path (CSV), one per coin.", valueName: "FILE|COIN=FILE"))
    var paths: [String] = []

    @Option(help: ArgumentHelp("Position Builder requests (a JSON array, or one per line): one account each.", valueName: "FILE"))
    var population: String?

    @Option(help: "Accounts to generate (without --population).")
    var accounts: Int?

    @Option(help: "Seed of the generated population.")
    var seed: UInt64?

    @Option(
        name: .customLong("params"), parsing: .upToNextOption,
        help: ArgumentHelp("Parameter sets (okx-pm model) to compare: files or shipped ids (default okx-2025-01).", valueName: "FILE|ID"))
    var parameters: [String] = []

    @Option(
        name: .customLong("snapshot"),
        help: ArgumentHelp(
            "Base market snapshot the path moves: a JSON file, or a shipped name (\(ShippedData.marketNames.joined(separator: ", "))).",
            valueName: "FILE|NAME"))
    var snapshot: String?

    /// `--market`, the old name of `--snapshot` (as in every other command); still accepted, with a note on stderr.
    @Option(name: .customLong("market"), help: .hidden)
    var deprecatedMarket: String?

    @Option(name: .customLong("catalog"), help: ArgumentHelp("Instrument catalog in the OKX instruments schema.", valueName: "FILE"))
    var catalogPath: String?

    @Option(help: ArgumentHelp("Liquidation horizon of the coverage test: 1h, 15m, 300s.", valueName: "DURATION"))
    var horizon = "1h"

    @Option(
        help: ArgumentHelp(
            "Option volatility along the path: linked:E (σ·(S/S₀)^−E below the start; default linked:1) or fixed:X (+X absolute throughout).",
            valueName: "RULE"))
    var vol = "linked:1"

    @Option(help: ArgumentHelp("Margin modes to run (comma-separated): pm, classic.", valueName: "MODES"))
    var modes = "pm,classic"

    @Flag(
        name: .customLong("windows"),
        help: "Coverage over every window of the series from the base market (for the long hourly series) instead of a replay.")
    var everyWindow = false

    @Option(
        name: .customLong("report"),
        help: ArgumentHelp(
            "Write a self-contained HTML report (index.html) and its numbers (backtest.json) to this directory.", valueName: "DIR"))
    var reportDirectory: String?

    @Option(help: "Output format (default: table on a terminal, json otherwise).")
    var format: OutputFormat?

    @Flag(help: "No progress line on standard error (it is shown only on a terminal anyway).")
    var quiet = false

    func run() async throws {
        let configuration: BacktestConfiguration
        do {
            configuration = try makeConfiguration()
        } catch let error as ValidationError {
            throw error
        } catch {
            fail("\(error)")
        }
        let showProgress = !quiet && isatty(2) == 1
        var progress: Backtester.Progress?
        if showProgress {
            progress = { @Sendable (fraction: Double, message: String) in
                let line = "\r\u{1B}[K" + String(format: "%5.1f %%", fraction * 100) + " " + message
                FileHandle.standardError.write(Data(line.utf8))
            }
        }
        let result: BacktestResult
        do {
            result = try await Backtester.run(configuration, progress: progress)
        } catch {
            if showProgress { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
            fail("\(error)")
        }
        if showProgress { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        let json = BacktestReport.json(result)
        if let directory = reportDirectory {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                let folder = URL(fileURLWithPath: directory)
                try Data((JSONWriter.serialize(json, pretty: true) + "\n").utf8).write(to: folder.appendingPathComponent("backtest.json"))
                try Data(BacktestHTML.page(json).utf8).write(to: folder.appendingPathComponent("index.html"))
            } catch {
                fail("--report \(directory): \(error.localizedDescription)")
            }
        }
        let format = self.format ?? (standardOutputIsTerminal() ? .table : .json)
        let output = format == .json ? JSONWriter.serialize(json, pretty: true) + "\n" : BacktestReport.table(result)
        FileHandle.standardOutput.write(Data(output.utf8))
    }

    func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data("pm: error: \(message)\n".utf8))
        Foundation.exit(1)
    }

    func makeConfiguration() throws -> BacktestConfiguration {
        guard !paths.isEmpty else { throw ValidationError("give at least one --path FILE (a CSV price path, e.g. data/crash_paths/…)") }
        let source: BacktestConfiguration.PopulationSource
        if let population {
            guard accounts == nil, seed == nil else { throw ValidationError("--population and --accounts/--seed exclude each other") }
            source = .file(population)
        } else {
            let count = accounts ?? 1_000
            guard count >= 1, count <= 1_000_000 else { throw ValidationError("--accounts \(count) must be between 1 and 1,000,000") }
            source = .generated(count: count, seed: seed ?? 1)
        }
        guard let horizonMilliseconds = Self.milliseconds(horizon) else {
            throw ValidationError("--horizon \(horizon) is not a duration like 1h, 15m or 300s")
        }
        guard let volatility = VolatilityRegime(argument: vol) else {
            throw ValidationError("--vol \(vol) must be linked:E (0 ≤ E ≤ 5) or fixed:X (−1 < X ≤ 3)")
        }
        var levels: [AccountLevel] = []
        for mode in modes.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces).lowercased() }) {
            switch mode {
            case "pm": levels.append(.portfolioMargin)
            case "classic": levels.append(.classic)
            default: throw ValidationError("--modes \(modes): \(mode) is neither pm nor classic")
            }
        }
        guard !levels.isEmpty else { throw ValidationError("--modes needs pm, classic or both") }
        let catalog = try InputDocuments.catalog(catalogPath)
        if deprecatedMarket != nil, snapshot != nil { throw ValidationError("--market is the old name of --snapshot: give one of them") }
        let snapshotName = try snapshot ?? deprecatedMarket.map { try renamedOption("--market", to: "--snapshot", value: $0) }
        let marketName = snapshotName ?? ShippedData.defaultMarketName
        let baseSnapshot = try InputDocuments.market(marketName)
        var sets: [MarginParameters] = []
        for name in parameters.isEmpty ? [ShippedData.defaultParameterSetID] : parameters {
            let loaded = try InputDocuments.modelParameters(name)
            guard case .okxPM(let set) = loaded else {
                throw CommandFailure(
                    description:
                        "--params \(name): the exchange core margins with the okx-pm model only; \(loaded.model.rawValue) is for pm build and pm compare"
                )
            }
            guard !sets.contains(where: { $0.id == set.id }) else {
                throw CommandFailure(description: "--params \(name): parameter set \(set.id) given twice")
            }
            sets.append(set)
        }
        var configuration = BacktestConfiguration(
            paths: paths, population: source, parameterSets: sets, market: baseSnapshot, marketName: marketName, catalog: catalog)
        configuration.levels = levels
        configuration.horizonMilliseconds = horizonMilliseconds
        configuration.volatility = volatility
        configuration.mode = everyWindow ? BacktestConfiguration.Mode.windows : .replay
        return configuration
    }

    /// `1h`, `90m`, `300s` (or a bare number of seconds) in milliseconds; nil when malformed or not positive.
    static func milliseconds(_ text: String) -> Int64? {
        let units: [(String, Int64)] = [("h", 3_600_000), ("m", 60_000), ("s", 1000)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            guard let value = Int64(text.dropLast(suffix.count)), value > 0, value <= 366 * 24 * 3600 else { return nil }
            return value * scale
        }
        guard let seconds = Int64(text), seconds > 0 else { return nil }
        return seconds * 1000
    }
}
