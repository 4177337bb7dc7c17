import Foundation
import MarginDefaults
import MarginEngine
import MarginTestSupport
import Sandbox
import Testing

@testable import Backtest

/// Hand-built scenarios whose outcome and coverage follow from the rules: five accounts and a BTC path that falls
/// 25 % in one hour, replayed through the exchange core in both modes.
@Suite(.serialized)
struct BacktestScenarioTests {
    static let perpetual = "BTC-USDT-SWAP"
    static let hour: Int64 = 3_600_000
    /// BTC closes per hour: flat, −25 % in the third hour, flat.
    static let closes = [100.0, 100, 75, 75, 75]
    static let fall = 0.25

    /// A (≈4.9× long: liquidated with a deficit), B (0.9× long), C (cash only), D (short), E (≈2.9× long, sized so
    /// the fall leaves its PM ratio near 105 %: a margin call, no liquidation).
    static let population = """
        [
          {"simAsset": [{"ccy": "USDT", "amt": "20000"}], "simPos": [{"instId": "BTC-USDT-SWAP", "pos": "110"}]},
          {"simAsset": [{"ccy": "USDT", "amt": "100000"}], "simPos": [{"instId": "BTC-USDT-SWAP", "pos": "100"}]},
          {"simAsset": [{"ccy": "USDT", "amt": "20000"}]},
          {"simAsset": [{"ccy": "USDT", "amt": "100000"}], "simPos": [{"instId": "BTC-USDT-SWAP", "pos": "-100"}]},
          {"simAsset": [{"ccy": "USDT", "amt": "30700"}], "simPos": [{"instId": "BTC-USDT-SWAP", "pos": "100"}]}
        ]
        """

    static func directory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("backtest-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// Writes the path (hours from 2024-01-01T00:00Z, `skipping` hours left out) and the population.
    static func inputs(closes: [Double] = closes, skipping: Set<Int> = []) throws -> (path: String, population: String) {
        let folder = try directory()
        var lines = ["timestamp_utc,open,high,low,close,volume"]
        for (hour, close) in closes.enumerated() where !skipping.contains(hour) {
            let time = UnixMillis(UnixMillis.utc(year: 2024, month: 1, day: 1).rawValue + Int64(hour) * Self.hour).iso8601
            lines.append("\(time),\(close),\(close),\(close),\(close),1")
        }
        let path = folder.appendingPathComponent("btc_usdt_test_1h.csv").path
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let population = folder.appendingPathComponent("accounts.json").path
        try Self.population.write(toFile: population, atomically: true, encoding: .utf8)
        return (path, population)
    }

    static func configuration(path: String, population: String, mode: BacktestConfiguration.Mode = .replay) throws -> BacktestConfiguration
    {
        var configuration = BacktestConfiguration(
            paths: [path], population: .file(population), parameterSets: [try ShippedData.parameters()],
            market: try ShippedData.market(named: ShippedData.defaultMarketName), marketName: ShippedData.defaultMarketName,
            catalog: try ShippedData.catalog())
        configuration.mode = mode
        return configuration
    }

    static func run(_ level: AccountLevel, in result: BacktestResult) throws -> BacktestRun {
        try #require(result.runs.first { $0.level == level })
    }

    @Test func theFallLiquidatesTheLeveredLongCallsTheThinOneAndBreachesEveryLong() async throws {
        let (path, population) = try Self.inputs()
        let result = try await Backtester.run(try Self.configuration(path: path, population: population))
        #expect(result.runs.count == 2)
        for run in result.runs {
            #expect(run.accountsOpened == 5, "\(run.label)")
            #expect(run.openingRefusals.isEmpty, "\(run.openingRefusals)")
            // Four accounts hold a requirement over four one-hour windows; A, B and E (the longs) lose more than
            // their MMR in the window of the fall, D gains, nothing moves in the others.
            #expect(run.coverage.observations == 16, "\(run.label)")
            #expect(run.coverage.breaches == 3, "\(run.label)")
            #expect(run.coverage.skippedWindows == 0)
            #expect(Set(run.coverage.worst.map(\.account)) == [0, 1, 4])
            #expect(run.coverage.worst.allSatisfy { $0.pathStart == result.path.times[1] })
            #expect(run.coverage.breachesByStep[1] == 3)
            let outcomes = try #require(run.outcomes)
            #expect(outcomes.liquidatedAccounts == 1, "\(run.label)")
            #expect(outcomes.fullyLiquidatedAccounts == 1)
            #expect(outcomes.liquidationsByStep[2] == 1)
            #expect(outcomes.badDebtUSD > 0, "A's loss exceeds its equity")
            #expect(outcomes.accountsWithBadDebt == 1)
            #expect(outcomes.leftAtOrBelowTrigger == 0, "a liquidation restores the account or closes it out, its deficit covered")
            #expect((outcomes.lowestRatio ?? 0) > 1, "\(run.label)")
            // The fund received the opening fees and paid the deficit.
            #expect(outcomes.fundUSDByStep[0] > 0)
            #expect(outcomes.fundUSDByStep[2] < outcomes.fundUSDByStep[1])
            // Everything here settles in USDT, whose index does not move: the fund is its income less the bad debt.
            #expect(isClose(outcomes.fundEndUSD, outcomes.fundIncomeUSD - outcomes.badDebtUSD, relative: 1e-9))
        }
        let pm = try Self.run(.portfolioMargin, in: result)
        let classic = try Self.run(.classic, in: result)
        #expect(pm.outcomes?.marginCalls == 1, "E ends between 100 % and 110 % under PM")
        #expect(classic.outcomes?.marginCalls == 0, "classic's 0.4 % MMR leaves E far above 110 %")
        #expect(pm.coverage.breachesByBinding == ["MR1 (BTC)": 3])
        #expect(classic.coverage.breachesByBinding == ["classic tier rate": 3])
    }

    /// B's breach, recomputed from the rules: the loss is the fall of the perpetual (its basis held) in USD, the
    /// MMR the engine's at the window's start for B's position.
    @Test func aBreachIsTheLossAgainstTheEnginesMMRAtTheStart() async throws {
        let (path, population) = try Self.inputs()
        let configuration = try Self.configuration(path: path, population: population)
        let result = try await Backtester.run(configuration)
        let pm = try Self.run(.portfolioMargin, in: result)
        let breach = try #require(pm.coverage.worst.first { $0.account == 1 })
        let base = configuration.market
        let btcUSD = try base.indexUSD("BTC")
        let contracts = 100.0
        let perpetual = try #require(configuration.catalog.instrument(Self.perpetual))
        #expect(isClose(breach.lossUSD, Self.fall * contracts * perpetual.contractValue * btcUSD, relative: 1e-9))
        let market = try PathMarket(
            base: try base.restricted(to: [perpetual]), catalog: InstrumentCatalog(instruments: [perpetual]), volatility: .standard)
        let start = try market.snapshot(at: UnixMillis(base.valuationTime.rawValue + Self.hour), factors: ["BTC": 1])
        let position = Position(instrument: perpetual, sizeContracts: contracts, averagePrice: 88_000, source: Self.perpetual)
        let engine = try PortfolioMargin.compute(
            Portfolio(positions: [position], cashBalances: ["USDT": 100_000]), market: start, parameters: configuration.parameterSets[0])
        #expect(isClose(breach.mmrUSD, engine.totalMmrUSD, relative: 1e-9))
        #expect(breach.shortfallUSD == breach.lossUSD - breach.mmrUSD)
    }

    @Test func windowsModeScoresEveryWindowFromTheBaseMarket() async throws {
        let (path, population) = try Self.inputs()
        let result = try await Backtester.run(try Self.configuration(path: path, population: population, mode: .windows))
        #expect(result.windowStarts == [0, 1, 2, 3])
        for run in result.runs {
            #expect(run.outcomes == nil)
            #expect(run.coverage.observations == 16)
            #expect(run.coverage.breaches == 3)
            #expect(run.coverage.breachesByStep == [0, 3, 0, 0])
        }
    }

    /// A missing hour: the window that would end there is skipped (counted), none is made up, and the 2-hour
    /// move across the gap is never scored as a 1-hour one.
    @Test func aGapSkipsTheWindowsItBreaks() async throws {
        let (path, population) = try Self.inputs(skipping: [2])
        let result = try await Backtester.run(try Self.configuration(path: path, population: population))
        #expect(result.path.times.count == 4)
        for run in result.runs {
            #expect(run.coverage.observations == 8, "(t0, t1) and (t3, t4) for four accounts")
            #expect(run.coverage.skippedWindows == 4, "the window from t1, for the four accounts with a requirement")
            #expect(run.coverage.breaches == 0)
        }
    }

    @Test func sameInputsGiveTheSameReport() async throws {
        let (path, _) = try Self.inputs()
        var configuration = try Self.configuration(path: path, population: "")
        configuration.population = .generated(count: 60, seed: 11)
        let first = try await Backtester.run(configuration)
        let second = try await Backtester.run(configuration)
        func stripped(_ result: BacktestResult) -> String {
            guard case .object(var object) = BacktestReport.json(result) else { return "" }
            object["runtimeSeconds"] = nil
            return JSONWriter.serialize(.object(object))
        }
        #expect(stripped(first) == stripped(second))
        configuration.population = .generated(count: 60, seed: 12)
        let other = try await Backtester.run(configuration)
        #expect(stripped(other) != stripped(first))
    }
}
