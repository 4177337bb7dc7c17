import Dispatch
import Foundation
import MarginEngine
import Sandbox
import Synchronization

/// What a backtest runs: the path, the population, the parameter sets and modes, the horizon and the
/// volatility rule.
public struct BacktestConfiguration: Sendable {
    /// Where the accounts come from.
    public enum PopulationSource: Sendable {
        /// `count` accounts drawn from `seed` (``Population/generate(count:seed:coins:universe:market:parameters:)``).
        case generated(count: Int, seed: UInt64)
        /// Position Builder requests, one account each (``Population/load(file:catalog:market:)``).
        case file(String)
    }

    /// How the path is used.
    public enum Mode: String, Sendable {
        /// The population is opened once and the exchange replays the whole path (outcomes), while the coverage
        /// pass follows the same books held fixed along it.
        case replay
        /// Coverage only, over every window of the series: each window's move (start to one horizon later) is
        /// applied to the books as opened at the base market. For long series (years of hours), which cannot be
        /// replayed cumulatively without leaving the base market far behind.
        case windows
    }

    /// `FILE` or `COIN=FILE`, one per coin.
    public var paths: [String]
    public var population: PopulationSource
    public var parameterSets: [MarginParameters]
    public var levels: [AccountLevel] = [.portfolioMargin, .classic]
    /// The base market the path's moves are applied to, and its name for the report.
    public var market: MarketSnapshot
    public var marketName: String
    public var catalog: InstrumentCatalog
    /// The liquidation horizon of the coverage test.
    public var horizonMilliseconds: Int64 = 3_600_000
    public var volatility: VolatilityRegime = .standard
    public var mode: Mode = .replay

    public init(
        paths: [String], population: PopulationSource, parameterSets: [MarginParameters], market: MarketSnapshot, marketName: String,
        catalog: InstrumentCatalog
    ) {
        self.paths = paths
        self.population = population
        self.parameterSets = parameterSets
        self.market = market
        self.marketName = marketName
        self.catalog = catalog
    }
}

/// A backtest that cannot run: a path, population or configuration problem, with where it is.
public struct BacktestError: Error, CustomStringConvertible {
    public var description: String

    public init(_ description: String) { self.description = description }
}

/// One parameter set in one mode: its outcomes on the exchange (replay mode) and its coverage.
public struct BacktestRun: Sendable {
    public var parametersID: String
    public var level: AccountLevel
    /// Accounts opened on this run's exchange, and the orders or switches it refused.
    public var accountsOpened: Int
    public var openingRefusals: [String]
    /// Replay mode only.
    public var outcomes: Outcomes?
    public var coverage: CoverageResult

    public var modeName: String { level == .portfolioMargin ? "PM" : "classic" }
    public var label: String { "\(parametersID) \(modeName)" }
}

/// Everything a backtest found, for the table, the JSON and the HTML report.
public struct BacktestResult: Sendable {
    public var configuration: BacktestConfiguration
    public var path: AlignedPath
    public var population: Population
    public var runs: [BacktestRun]
    /// Market time of every step (the base snapshot's time plus the path's elapsed time).
    public var marketTimes: [UnixMillis]
    /// Instruments the population may hold.
    public var universe: [String]
    /// Windows mode: the start step of each window scored or skipped, in order (the report's time axis).
    public var windowStarts: [Int] = []
    /// Wall-clock seconds of the whole backtest (measured; not part of the deterministic results).
    public var elapsedSeconds = 0.0
}

/// Windows scored so far, across the slices scored side by side (for the progress line only).
final class WindowCounter: Sendable {
    let count = Atomic<Int>(0)
}

/// Runs backtests (`pm backtest`).
public enum Backtester {
    /// Windows mode scores this many slices of the windows side by side (a constant, so that sums of doubles are
    /// grouped the same way on every machine).
    static let windowSlices = 8

    /// Progress: fraction done (0…1) and what is running.
    public typealias Progress = @Sendable (Double, String) -> Void

    /// Reads the paths (`FILE` or `COIN=FILE`) and aligns them; every coin must have an index in `market`.
    public static func loadPath(_ arguments: [String], market: MarketSnapshot) throws -> AlignedPath {
        var series: [PriceSeries] = []
        for argument in arguments {
            let parts = argument.split(separator: "=", maxSplits: 1).map(String.init)
            let (coin, file): (String?, String) =
                parts.count == 2 && parts[0].allSatisfy({ $0.isLetter || $0.isNumber }) && !parts[0].isEmpty
                ? (parts[0].uppercased(), parts[1]) : (nil, argument)
            let loaded = try PriceSeries(contentsOf: file, coin: coin)
            guard (try? market.indexUSD(loaded.coin)) != nil else {
                let coins = market.indices.keys.compactMap { $0.hasSuffix("-USD") ? String($0.dropLast(4)) : nil }.sorted()
                throw BacktestError(
                    "\(file): the path moves \(loaded.coin), which has no \(loaded.coin)-USD index in the market snapshot "
                        + "(coins it prices: \(coins.joined(separator: ", "))); nothing is extrapolated to other coins")
            }
            series.append(loaded)
        }
        return try AlignedPath(series)
    }

    /// Runs the configured backtest.
    public static func run(_ configuration: BacktestConfiguration, progress: Progress? = nil) async throws -> BacktestResult {
        let started = DispatchTime.now().uptimeNanoseconds
        guard !configuration.parameterSets.isEmpty else { throw BacktestError("no parameter set") }
        guard configuration.horizonMilliseconds > 0 else { throw BacktestError("the horizon must be positive") }
        let path = try loadPath(configuration.paths, market: configuration.market)
        let base = configuration.market
        let elapsed = path.times[path.times.count - 1].rawValue - path.times[0].rawValue
        guard configuration.horizonMilliseconds <= elapsed else {
            throw BacktestError(
                "the horizon (\(configuration.horizonMilliseconds / 60_000) min) is longer than the path (\(elapsed / 60_000) min)")
        }
        let pathEnd = UnixMillis(
            base.valuationTime.rawValue + (configuration.mode == .replay ? elapsed : configuration.horizonMilliseconds))

        // The instruments the population may hold, and the market restricted to them.
        let universe: [Instrument]
        switch configuration.population {
        case .generated:
            universe = try Population.universe(coins: path.coins, catalog: configuration.catalog, market: base, pathEnd: pathEnd)
        case .file(let file):
            universe = try Population.universe(file: file, coins: path.coins, catalog: configuration.catalog, market: base)
        }
        let catalog = InstrumentCatalog(instruments: universe)
        let pathMarket = try PathMarket(base: try base.restricted(to: universe), catalog: catalog, volatility: configuration.volatility)
        let opening = try pathMarket.snapshot(at: base.valuationTime, factors: [:])
        progress?(0, "population")
        let population: Population
        switch configuration.population {
        case .generated(let count, let seed):
            population = try Population.generate(
                count: count, seed: seed, coins: path.coins, universe: universe, market: opening, parameters: configuration.parameterSets)
        case .file(let file):
            population = try Population.load(
                file: file, catalog: catalog, market: opening,
                minimumNetEquityUSD: configuration.parameterSets.map(\.pmMinimumNetEquityUSD).max() ?? 10_000)
        }
        let kinds = population.accounts.map(\.kindName)
        let extraCurrencies = base.indices.keys.compactMap { pair -> String? in
            let parts = pair.split(separator: "-")
            return parts.count == 2 ? String(parts[0]) : nil
        }

        // One exchange per parameter set and mode, the books opened on each.
        var replays: [ExchangeReplay] = []
        var tables: [ScenarioVectorTable] = []
        for parameters in configuration.parameterSets {
            tables.append(
                ScenarioVectorTable(instruments: universe, market: opening, parameters: parameters, extraCurrencies: extraCurrencies))
            for level in configuration.levels {
                replays.append(try ExchangeReplay(parameters: parameters, level: level, catalog: catalog, market: opening, kinds: kinds))
            }
        }
        let runCount = replays.count
        progress?(0, "opening \(population.accounts.count) accounts on \(runCount) exchanges")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for replay in replays {
                group.addTask {
                    try await replay.open(population)
                    try await replay.recordOpening(market: opening)
                }
            }
            try await group.waitForAll()
        }
        var trackers: [CoverageTracker] = []
        for (run, replay) in replays.enumerated() {
            let parameters = configuration.parameterSets[run / configuration.levels.count]
            trackers.append(
                CoverageTracker(
                    books: await replay.staticBooks(table: tables[run / configuration.levels.count]), kinds: kinds, parameters: parameters,
                    horizonMilliseconds: configuration.horizonMilliseconds,
                    steps: configuration.mode == .replay ? path.steps : path.times.count))
        }
        func setIndex(ofRun run: Int) -> Int { run / configuration.levels.count }

        var marketTimes: [UnixMillis] = []
        var windowStarts: [Int] = []
        switch configuration.mode {
        case .replay:
            var previousTables = tables
            for step in 0...path.steps {
                let time = UnixMillis(base.valuationTime.rawValue + (path.times[step].rawValue - path.times[0].rawValue))
                marketTimes.append(time)
                let market = step == 0 ? opening : try pathMarket.snapshot(at: time, factors: path.factors(at: step))
                if step > 0 {
                    // The exchanges are independent: they move side by side.
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for replay in replays { group.addTask { try await replay.step(to: market) } }
                        try await group.waitForAll()
                    }
                }
                var stepTables: [ScenarioVectorTable] = []
                for (index, parameters) in configuration.parameterSets.enumerated() {
                    stepTables.append(
                        step == 0
                            ? previousTables[index]
                            : ScenarioVectorTable(updating: previousTables[index], market: market, parameters: parameters))
                }
                for run in 0..<runCount {
                    trackers[run].observe(
                        step: step, time: time, pathTime: path.times[step], table: stepTables[setIndex(ofRun: run)], market: market)
                }
                previousTables = stepTables
                if step % 16 == 0 || step == path.steps {
                    progress?(Double(step) / Double(max(path.steps, 1)), "step \(step)/\(path.steps) \(path.times[step].iso8601)")
                }
            }
            for replay in replays { await replay.finish() }
        case .windows:
            marketTimes = [base.valuationTime]
            let starts = (0..<runCount).map { run in trackers[run].start(table: tables[setIndex(ofRun: run)], market: opening) }
            let endTime = UnixMillis(base.valuationTime.rawValue + configuration.horizonMilliseconds)
            // Every window from a start whose end lies within the series; its end step, nil in a gap of the data.
            var windows: [(start: Int, end: Int?)] = []
            for start in 0..<path.times.count {
                let target = UnixMillis(path.times[start].rawValue + configuration.horizonMilliseconds)
                if target > path.times[path.times.count - 1] { break }
                windows.append((start, path.index(of: target)))
            }
            windowStarts = windows.map(\.start)
            // Windows are independent (each starts from the base market), so fixed slices of them are scored side
            // by side and their results merged in slice order: the same numbers on any machine, whatever its cores.
            let sliceCount = min(Self.windowSlices, max(windows.count, 1))
            let sliceLength = (windows.count + sliceCount - 1) / max(sliceCount, 1)
            let done = WindowCounter()
            let total = windows.count
            let sliceResults = try await withThrowingTaskGroup(of: (Int, [CoverageResult]).self) { group in
                for slice in 0..<sliceCount {
                    let range = min(slice * sliceLength, windows.count)..<min((slice + 1) * sliceLength, windows.count)
                    let sliceTrackers = trackers.map { $0.emptied() }
                    group.addTask {
                        [windows, path, pathMarket, tables, starts, levels = configuration.levels.count, sets = configuration.parameterSets]
                        in
                        var trackers = sliceTrackers
                        for slot in range {
                            let window = windows[slot]
                            guard let end = window.end else {
                                for run in 0..<runCount { trackers[run].skip(from: starts[run]) }
                                continue
                            }
                            let market = try pathMarket.snapshot(at: endTime, factors: path.factors(from: window.start, to: end))
                            for (index, parameters) in sets.enumerated() {
                                let table = ScenarioVectorTable(updating: tables[index], market: market, parameters: parameters)
                                for run in 0..<runCount where run / levels == index {
                                    trackers[run].scoreWindow(
                                        start: starts[run], endTable: table, endMarket: market, end: endTime, slot: slot,
                                        pathStart: path.times[window.start])
                                }
                            }
                            let finished = done.count.add(1, ordering: .relaxed).newValue
                            if finished % 256 == 0 {
                                progress?(Double(finished) / Double(max(total, 1)), "window \(finished)/\(total)")
                            }
                        }
                        return (slice, trackers.map(\.result))
                    }
                }
                var results = [[CoverageResult]](repeating: [], count: sliceCount)
                for try await (slice, result) in group { results[slice] = result }
                return results
            }
            for run in 0..<runCount {
                var merged = CoverageResult()
                for slice in sliceResults { merged.merge(slice[run]) }
                merged.breachesByStep = Array(merged.breachesByStep.prefix(windowStarts.count))
                trackers[run].result = merged
            }
        }
        progress?(1, "done")

        var runs: [BacktestRun] = []
        for run in 0..<runCount {
            let replay = replays[run]
            let outcomes = await replay.outcomes
            runs.append(
                BacktestRun(
                    parametersID: replay.parameters.id, level: replay.level, accountsOpened: outcomes.accountsOpened,
                    openingRefusals: outcomes.openingRefusals, outcomes: configuration.mode == .replay ? outcomes : nil,
                    coverage: trackers[run].result))
        }
        var result = BacktestResult(
            configuration: configuration, path: path, population: population, runs: runs, marketTimes: marketTimes,
            universe: universe.map(\.id.rawValue))
        result.windowStarts = windowStarts
        result.elapsedSeconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
        return result
    }
}
