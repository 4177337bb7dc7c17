import ArgumentParser
import Dispatch
import Foundation
import MarginDefaults
import MarginEngine
import MarginTestSupport
import Sandbox

/// `pm-bench engine`: the engine's speed on this machine. Benchmarks, not tests: it prints what it measured.
struct EngineBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engine",
        abstract: "Measure Black-76, the Position Builder, batch re-margining and the MR1 grid (build with -c release).",
        discussion: "Ends with one JSON line. --grid-out writes the MR1 grid inputs for bench/python_grid.py.")

    @Flag(help: "Smaller sizes (finishes well within two minutes).") var quick = false
    @Option(help: "Write the 1,000-option MR1 grid inputs (JSON) for the Python comparison.") var gridOut: String?
    @Option(help: "Run only these sections (comma-separated: black76, builder, sweep, grid); default all.") var only: String?
    @Option(help: "Position Builder repetitions per size (default 2,000; 200 with --quick).") var builderRepeats: Int?
    @Option(help: "Position Builder portfolio sizes (comma-separated).") var builderSizes = "10,100,1000"
    @Option(help: "Worker threads for batch re-margining (default: all cores).") var workers = ProcessInfo.processInfo.activeProcessorCount

    func run() throws {
        let parameters = try ShippedData.parameters()
        let sections = Set((only ?? "black76,builder,sweep,grid").split(separator: ",").map(String.init))
        let known: Set<String> = ["black76", "builder", "sweep", "grid"]
        guard sections.isSubset(of: known) else {
            throw ValidationError("--only takes \(known.sorted().joined(separator: ", ")); got \(only ?? "")")
        }
        Self.log("pm bench on \(ProcessInfo.processInfo.activeProcessorCount) cores, \(workers) worker(s)\(quick ? ", quick" : "")")
        var report = Report()
        let universe = try BenchUniverse(parameters: parameters)
        if sections.contains("black76") { blackScholes(&report) }
        if sections.contains("builder") { try builder(universe, parameters, &report) }
        if sections.contains("sweep") { sweep(universe, parameters, &report) }
        if sections.contains("grid") { try grid(universe, parameters, &report) }
        let peak = Self.peakMemoryMB()
        Self.log(String(format: "Peak memory (max RSS) of the whole run: %.0f MB", peak))
        report.add("peakMemoryMB", peak)
        report.add("checksum", report.sink.truncatingRemainder(dividingBy: 1e6))
        print(JSONWriter.serialize(.object(report.fields)))
    }

    /// The JSON line, and a sink that keeps the optimiser from discarding measured work.
    struct Report {
        var fields: [(String, JSONValue)] = []
        var sink = 0.0
        mutating func add(_ key: String, _ value: Double, exact: Bool = false) {
            fields.append((key, .number(DecimalText.format(exact ? value : EngineBench.round(value)))))
        }
    }

    func blackScholes(_ report: inout Report) {
        let evaluations = quick ? 2_000_000 : 10_000_000
        var sink = 0.0
        let greeksSeconds = Self.time {
            for index in 0..<evaluations {
                let strike = 50_000 + Double(index % 1_000) * 50
                let option = Black76(.call, forward: 88_000, strike: strike, volatility: 0.6, timeToExpiryYears: 0.25, discountFactor: 0.99)
                sink += option.price + option.delta + option.gamma + option.vega + option.theta
            }
        }
        let priceSeconds = Self.time {
            for index in 0..<evaluations {
                let strike = 50_000 + Double(index % 1_000) * 50
                sink += Black76.price(.put, forward: 88_000, strike: strike, volatility: 0.6, timeToExpiryYears: 0.25, discountFactor: 0.99)
            }
        }
        let black76Ns = greeksSeconds / Double(evaluations) * 1e9
        let priceNs = priceSeconds / Double(evaluations) * 1e9
        Self.log(String(format: "Black-76 price + delta, gamma, vega, theta: %.1f ns; price only: %.1f ns", black76Ns, priceNs))
        report.add("black76Ns", black76Ns)
        report.add("black76PriceNs", priceNs)
        report.sink += sink
    }

    /// Position Builder latency: 10 risk units, half options. The margin uses the market's scenario
    /// vectors (computed once per market update, as the server does) and includes every figure of the
    /// answer: components, Greeks, per-position marginal MMR. Each stage is timed in its own loop (medians):
    /// the margin, the JSON response built from it, and the margin when every instrument is priced first.
    func builder(_ universe: BenchUniverse, _ parameters: MarginParameters, _ report: inout Report) throws {
        let risks = universe.table.risksByID
        for count in builderSizes.split(separator: ",").compactMap({ Int($0) }) {
            let portfolio = universe.portfolio(positions: count, seed: UInt64(count))
            let repeats = builderRepeats ?? (quick ? 200 : 2_000)
            let result = try PortfolioMargin.compute(portfolio, market: universe.market, parameters: parameters, risks: risks)
            let warm = try (0..<repeats).map { _ in
                try Self.timeThrowing {
                    report.sink += try PortfolioMargin.compute(portfolio, market: universe.market, parameters: parameters, risks: risks)
                        .totalMmrUSD
                }
            }
            let response = (0..<repeats).map { _ in
                Self.time {
                    report.sink += Double(
                        JSONWriter.serialize(PositionBuilder.response(result, before: nil, greeksType: .blackScholes)).utf8.count)
                }
            }
            let cold = try (0..<max(10, repeats / 10)).map { _ in
                try Self.timeThrowing {
                    report.sink += try PortfolioMargin.compute(portfolio, market: universe.market, parameters: parameters).totalMmrUSD
                }
            }
            let warmUs = Self.median(warm) * 1e6
            let responseUs = Self.median(response) * 1e6
            let coldUs = Self.median(cold) * 1e6
            Self.log(
                String(
                    format:
                        "Position Builder, %4d positions: %8.1f µs margin from scenario vectors, + %8.1f µs JSON response; %8.1f µs pricing cold",
                    count, warmUs, responseUs, coldUs))
            report.add("builder\(count)Us", warmUs)
            report.add("builder\(count)ResponseUs", responseUs)
            report.add("builder\(count)ColdUs", coldUs)
        }
    }

    /// Full re-margin of synthetic accounts of 20 positions, over all worker threads.
    func sweep(_ universe: BenchUniverse, _ parameters: MarginParameters, _ report: inout Report) {
        let kernel = BatchMargin(table: universe.table, parameters: parameters)
        for accounts in [100_000, 1_000_000] {
            let book = universe.book(accounts: accounts, positionsPerAccount: 20)
            var results: [AccountFigures?] = []
            var samples: [Double] = []
            for _ in 0..<(quick ? 1 : 5) {
                samples.append(Self.time { results = BatchRemargin.run(book, kernel: kernel, workers: workers) })
            }
            let seconds = Self.median(samples)
            let missing = results.filter { $0 == nil }.count
            report.sink += results.compactMap { $0?.totalMmrUSD }.reduce(0, +)
            Self.log(
                String(
                    format: "Re-margin %7d accounts × 20 positions: %.3f s (%.0f accounts/s), %d without prices; RSS now %.0f MB",
                    accounts, seconds, Double(accounts) / seconds, missing, Self.peakMemoryMB()))
            let key = accounts == 1_000_000 ? "sweep1m" : "sweep100k"
            report.add("\(key)Seconds", seconds)
            report.add("\(key)AccountsPerSecond", Double(accounts) / seconds)
        }
    }

    /// The MR1 grid (7 spot moves × 3 volatilities) of 1,000 option positions, three ways:
    /// - per cell: 22 Black-76 prices per position (base + 21 cells), the same work as the Python loops;
    /// - scenario vectors, cold: each distinct option priced once (22 prices), then Σ size × vector;
    /// - scenario vectors, warm: Σ size × vector only, the vectors coming from the market update (what
    ///   an account costs on the server, the pricing being shared by every account).
    func grid(_ universe: BenchUniverse, _ parameters: MarginParameters, _ report: inout Report) throws {
        let grid = universe.gridInputs(count: 1_000, parameters: parameters)
        let repeats = quick ? 50 : 300
        let perCell = Self.median((0..<repeats).map { _ in Self.time { report.sink += grid.perCell().reduce(0, +) } })
        let cold = Self.median((0..<repeats).map { _ in Self.time { report.sink += grid.aggregate(grid.vectors()).reduce(0, +) } })
        let vectors = grid.vectors()
        let warm = Self.median((0..<repeats * 20).map { _ in Self.time { report.sink += grid.aggregate(vectors).reduce(0, +) } })
        let cells = grid.perCell()
        let viaVectors = grid.aggregate(vectors)
        let disagreement = zip(cells, viaVectors).map { abs($0 - $1) / max(1, abs($0)) }.max() ?? 0
        Self.log(
            String(
                format:
                    "MR1 grid of %d option positions (%d distinct): %.1f µs per cell, %.1f µs with vectors cold, %.2f µs warm (methods agree to %.1e)",
                grid.rows.count, vectors.count, perCell * 1e6, cold * 1e6, warm * 1e6, disagreement))
        report.add("gridPerCellSeconds", perCell, exact: true)
        report.add("gridVectorsColdSeconds", cold, exact: true)
        report.add("gridVectorsWarmSeconds", warm, exact: true)
        report.add("gridDistinctOptions", Double(vectors.count))
        if let gridOut {
            try Data(JSONWriter.serialize(grid.json(cells: cells)).utf8).write(to: URL(fileURLWithPath: gridOut))
        }
    }

    static func log(_ text: String) { FileHandle.standardError.write(Data((text + "\n").utf8)) }

    static func median(_ samples: [Double]) -> Double { samples.isEmpty ? 0 : samples.sorted()[samples.count / 2] }

    static func round(_ value: Double) -> Double { (value * 1000).rounded() / 1000 }

    static func time(_ body: () -> Void) -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    static func timeThrowing(_ body: () throws -> Void) throws -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }

    static func peakMemoryMB() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_maxrss) / 1024
    }
}

/// A synthetic market of 10 coins with perpetuals, futures and options, for benchmarks.
struct BenchUniverse {
    let instruments: [Instrument]
    let market: MarketSnapshot
    let table: ScenarioVectorTable
    let perpetuals: [Int32]
    let options: [Int32]
    let coins: [String]

    static let coinNames = ["BTC", "ETH", "SOL", "LTC", "AVAX", "XRP", "DOGE", "BNB", "ADA", "LINK"]

    init(parameters: MarginParameters) throws {
        let time = UnixMillis.utc(year: 2026, month: 1, day: 5, hour: 12)
        var instruments: [Instrument] = []
        var indices: [String: Double] = ["USDT-USD": 0.9998, "USDC-USD": 1.0]
        var marks: [String: MarkQuote] = [:]
        let expiries = [(26, 1, 30), (26, 2, 27), (26, 3, 27), (26, 6, 26)]
        for (position, coin) in Self.coinNames.enumerated() {
            let spot = [88_000.0, 3_000, 125, 78, 12.3, 2.1, 0.31, 640, 0.85, 14][position]
            indices["\(coin)-USD"] = spot
            func add(_ id: String, contractValue: Double, mark: MarkQuote) {
                guard let instrumentID = InstrumentID(id) else { return }
                instruments.append(
                    Instrument(
                        id: instrumentID, contractValue: contractValue, contractMultiplier: 1,
                        settleCurrency: instrumentID.margining == .linear ? instrumentID.quoteCurrency : coin, tickSize: spot / 100_000,
                        lotSize: 1, minimumSize: 1))
                marks[id] = mark
            }
            add("\(coin)-USDT-SWAP", contractValue: 1, mark: MarkQuote(markPrice: spot / 0.9998 * 1.0001))
            add("\(coin)-USD-SWAP", contractValue: 10, mark: MarkQuote(markPrice: spot * 1.0001))
            for (year, month, day) in expiries {
                let date = String(format: "%02d%02d%02d", year, month, day)
                let years = time.years(until: UnixMillis.utc(year: 2000 + year, month: month, day: day, hour: 8))
                let forward = spot * (1 + 0.05 * years)
                add("\(coin)-USDT-\(date)", contractValue: 1, mark: MarkQuote(markPrice: forward / 0.9998))
                for multiple in [0.8, 0.9, 1.0, 1.1, 1.2] {
                    let strike = (spot * multiple * 100).rounded() / 100
                    let strikeText = DecimalText.format(strike)
                    for kind in ["C", "P"] {
                        add(
                            "\(coin)-USD-\(date)-\(strikeText)-\(kind)", contractValue: 1,
                            mark: MarkQuote(markVolatility: 0.5 + 0.3 * abs(multiple - 1) + 0.1 * Double(position % 3), forwardUSD: forward)
                        )
                    }
                }
            }
        }
        self.instruments = instruments
        market = try MarketSnapshot(valuationTime: time, indices: indices, marks: marks)
        let table = ScenarioVectorTable(instruments: instruments, market: market, parameters: parameters)
        self.table = table
        perpetuals = table.instruments.indices.filter { table.instruments[$0].kind != .option }.map { Int32($0) }
        options = table.instruments.indices.filter { table.instruments[$0].kind == .option }.map { Int32($0) }
        coins = Self.coinNames
    }

    /// A portfolio of `positions` positions over the 10 coins, half of them options.
    func portfolio(positions count: Int, seed: UInt64) -> Portfolio {
        var generator = SeededGenerator(seed: seed)
        var positions: [Position] = []
        for index in 0..<count {
            let pool = index % 2 == 0 ? options : perpetuals
            let instrument = table.instruments[Int(pool[Int(generator.next() % UInt64(pool.count))])]
            let size = Double(Int(generator.next() % 200) - 100) + 0.5
            positions.append(Position(instrument: instrument, sizeContracts: size, averagePrice: 1))
        }
        var balances = ["USDT": 5_000_000.0]
        for coin in coins { balances[coin] = Double(generator.next() % 50) }
        return Portfolio(positions: positions, cashBalances: balances)
    }

    /// `accounts` accounts of `positionsPerAccount` positions: each on 1–3 coins, a mix of perpetuals, futures
    /// and options, a USDT balance and sometimes a coin balance.
    func book(accounts: Int, positionsPerAccount: Int) -> AccountBook {
        var generator = SeededGenerator(seed: 7)
        var book = AccountBook()
        book.reserve(accounts: accounts, positions: accounts * positionsPerAccount)
        var byCoin: [Int32: [Int32]] = [:]
        for (index, instrument) in table.instruments.enumerated() {
            byCoin[table.currencyIndex(of: instrument.underlying) ?? 0, default: []].append(Int32(index))
        }
        let coinIndices = coins.compactMap { table.currencyIndex(of: $0) }
        let usdt = table.currencyIndex(of: "USDT") ?? 0
        for _ in 0..<accounts {
            let coinCount = 1 + Int(generator.next() % 3)
            let chosen = (0..<coinCount).map { _ in coinIndices[Int(generator.next() % UInt64(coinIndices.count))] }
            var positions: [(Int32, Double, Double)] = []
            for slot in 0..<positionsPerAccount {
                let pool = byCoin[chosen[slot % chosen.count]] ?? []
                let instrument = pool[Int(generator.next() % UInt64(pool.count))]
                let size = Double(Int(generator.next() % 40) - 20) + 0.5
                positions.append((instrument, size, table.markPrice[Int(instrument)]))
            }
            var balances: [(Int32, Double)] = [(usdt, Double(10_000 + generator.next() % 1_000_000))]
            if generator.next() % 3 == 0 { balances.append((chosen[0], Double(generator.next() % 20))) }
            book.append(positions: positions, balances: balances)
        }
        return book
    }

    func gridInputs(count: Int, parameters: MarginParameters) -> MR1Grid {
        var rows: [MR1Grid.Row] = []
        var generator = SeededGenerator(seed: 11)
        for _ in 0..<count {
            let index = Int(options[Int(generator.next() % UInt64(options.count))])
            let risk = table.risks[index]
            guard let instrumentMarket = risk?.market, let option = instrumentMarket.option,
                let strike = instrumentMarket.instrument.id.strikeUSD,
                let kind = instrumentMarket.instrument.id.optionKind
            else { continue }
            let tier = parameters.derivativeParameters(for: instrumentMarket.instrument.underlying)
            rows.append(
                MR1Grid.Row(
                    instrument: index, call: kind == .call, forward: option.forwardUSD, strike: strike, years: option.timeToExpiryYears,
                    discount: option.discountFactor, index: instrumentMarket.indexUSD, moves: ScenarioLayout(tier).mr1Moves,
                    volatilities: parameters.stateVolatilities(option.volatility, timeToExpiryYears: option.timeToExpiryYears),
                    baseVolatility: option.volatility, size: Double(Int(generator.next() % 100) - 50) + 0.5))
        }
        return MR1Grid(rows: rows)
    }
}

/// The MR1 grid benchmark: the same inputs for the engine and the Python comparisons. A cell's value is
/// Σ size × (shocked − base Black-76 value), USD per coin of underlying.
struct MR1Grid {
    struct Row {
        /// The option's index in the universe (rows of one option share every input but the size).
        var instrument: Int
        var call: Bool
        var forward, strike, years, discount, index: Double
        var moves: [Double]
        /// Up, same, down (``VolatilityState`` order).
        var volatilities: [Double]
        var baseVolatility: Double
        var size: Double
    }

    static let cellCount = ScenarioLayout.mr1CellCount

    let rows: [Row]
    let sizes: [Double]

    init(rows: [Row]) {
        self.rows = rows
        sizes = rows.map(\.size)
    }

    /// The 21 cells of one row, per unit size (22 Black-76 prices).
    static func cells(_ row: Row, into output: inout [Double], at offset: Int, scale: Double) {
        let kind: OptionKind = row.call ? .call : .put
        let base = Black76.price(
            kind, forward: row.forward, strike: row.strike, volatility: row.baseVolatility, timeToExpiryYears: row.years,
            discountFactor: row.discount)
        for (state, volatility) in row.volatilities.enumerated() {
            for (move, shift) in row.moves.enumerated() {
                let value = Black76.price(
                    kind, forward: row.forward + shift * row.index, strike: row.strike, volatility: volatility,
                    timeToExpiryYears: row.years, discountFactor: row.discount)
                output[offset + state * ScenarioLayout.mr1MoveCount + move] += scale * (value - base)
            }
        }
    }

    /// Every row priced cell by cell.
    func perCell() -> [Double] {
        var cells = [Double](repeating: 0, count: Self.cellCount)
        for row in rows { Self.cells(row, into: &cells, at: 0, scale: row.size) }
        return cells
    }

    /// One 21-cell vector per distinct option (priced once), flat, with each row's vector offset.
    func vectors() -> (values: [Double], offsets: [Int], count: Int) {
        var offsetByInstrument: [Int: Int] = [:]
        var values: [Double] = []
        var offsets: [Int] = []
        offsets.reserveCapacity(rows.count)
        for row in rows {
            if let known = offsetByInstrument[row.instrument] {
                offsets.append(known)
                continue
            }
            let offset = values.count
            values.append(contentsOf: repeatElement(0, count: Self.cellCount))
            Self.cells(row, into: &values, at: offset, scale: 1)
            offsetByInstrument[row.instrument] = offset
            offsets.append(offset)
        }
        return (values, offsets, offsetByInstrument.count)
    }

    /// Σ size × vector over the rows.
    func aggregate(_ vectors: (values: [Double], offsets: [Int], count: Int)) -> [Double] {
        var cells = [Double](repeating: 0, count: Self.cellCount)
        cells.withUnsafeMutableBufferPointer { cells in
            vectors.values.withUnsafeBufferPointer { values in
                vectors.offsets.withUnsafeBufferPointer { offsets in
                    sizes.withUnsafeBufferPointer { sizes in
                        for row in 0..<sizes.count {
                            let size = sizes[row]
                            let offset = offsets[row]
                            for cell in 0..<Self.cellCount { cells[cell] += size * values[offset + cell] }
                        }
                    }
                }
            }
        }
        return cells
    }

    func json(cells: [Double]) -> JSONValue {
        .object([
            ("engineCells", .array(cells.map(JSONValue.decimal))),
            (
                "rows",
                .array(
                    rows.map { row in
                        .object([
                            ("call", .bool(row.call)), ("forward", .decimal(row.forward)), ("strike", .decimal(row.strike)),
                            ("years", .decimal(row.years)),
                            ("discount", .decimal(row.discount)), ("index", .decimal(row.index)), ("size", .decimal(row.size)),
                            ("baseVolatility", .decimal(row.baseVolatility)),
                            ("moves", .array(row.moves.map(JSONValue.decimal))),
                            ("volatilities", .array(row.volatilities.map(JSONValue.decimal))),
                        ])
                    })
            ),
        ])
    }
}
