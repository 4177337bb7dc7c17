import Foundation
import MarginEngine

/// The kind of book a generated account holds (the population's mix, `Backtest.md`).
public enum BookKind: String, CaseIterable, Sendable, Comparable {
    /// One perpetual, long or short: USDT-margined (3 in 4) or coin-margined inverse.
    case directional
    /// A USDT perpetual with a protective long option: a put under a long, a call over a short.
    case hedged
    /// Cash and carry (coin collateral, short USDT perpetual) or a calendar (long dated USDT future, short perpetual).
    case basis
    /// Short puts or short strangles with USDT collateral.
    case optionSelling = "option-selling"
    /// Long calls, long puts or long straddles, premium paid from coin collateral.
    case optionBuying = "option-buying"

    /// Share of the generated population.
    public var weight: Double {
        switch self {
        case .directional: 0.35
        case .hedged: 0.15
        case .basis: 0.15
        case .optionSelling: 0.20
        case .optionBuying: 0.15
        }
    }

    /// The leverage draw: gross notional / equity is log-normal with this median and log-sd 0.5, clipped
    /// to ``leverageRange`` (option buyers draw the premium they spend instead).
    public var medianLeverage: Double {
        switch self {
        case .directional, .hedged: 3
        case .basis: 4
        case .optionSelling: 2
        case .optionBuying: 0
        }
    }

    public static let leverageLogSD = 0.5
    public static let leverageRange: ClosedRange<Double> = 0.5...10
    /// Option buyers spend a uniform share of their equity on premium.
    public static let premiumShareRange: ClosedRange<Double> = 0.05...0.30

    public static func < (lhs: BookKind, rhs: BookKind) -> Bool {
        allCases.firstIndex(of: lhs) ?? 0 < allCases.firstIndex(of: rhs) ?? 0
    }
}

/// One account of a population: what it deposits and the market orders that open its book.
public struct AccountSpec: Sendable {
    public struct Order: Sendable, Equatable {
        public var instrumentID: String
        /// Signed contracts: buy > 0.
        public var sizeContracts: ExactDecimal
    }

    /// Where it came from: `generated #12` or `FILE[3]`.
    public var source: String
    /// The generated kind; nil for an account given by the user.
    public var kind: BookKind?
    public var coin: String?
    /// The stablecoin a generated book deposits (USDT, or USDC for a share of books when the path moves USDC).
    public var stablecoin = "USDT"
    public var deposits: [(currency: String, amount: ExactDecimal)]
    /// In placement order (legs of a hedge interleaved in slices, so no intermediate state is one naked leg).
    public var orders: [Order]
    /// Gross notional over equity as drawn (before any scaling to the IMR), or the premium share of an option buyer.
    public var leverageDrawn: Double?
    /// How many times the book was scaled by 0.7 to fit the initial requirement in every mode and parameter set.
    public var scaledDown = 0

    /// The book's kind name for reports (`given` for an account from a file); a book on USDC collateral is
    /// `directional/USDC`.
    public var kindName: String { (kind?.rawValue ?? "given") + (stablecoin == "USDT" ? "" : "/\(stablecoin)") }
}

/// Why a population file was refused.
public struct PopulationError: Error, CustomStringConvertible {
    public var description: String
}

/// The accounts a backtest replays: generated from a seed or read from Position Builder requests.
public struct Population: Sendable {
    public var accounts: [AccountSpec]
    /// How it was made, for the report.
    public var summary: String

    // MARK: - Generated

    /// The population generator's fixed choices (`Backtest.md` states them).
    public enum Generator {
        /// Equity in USD: log-normal, median 50,000, log-sd 1, clipped to [12,000, 2,000,000] (above the 10,000 of
        /// net equity portfolio margin requires), rounded to 100.
        public static let medianEquityUSD = 50_000.0
        public static let equityLogSD = 1.0
        public static let equityRangeUSD: ClosedRange<Double> = 12_000...2_000_000
        /// Share of BTC books when the path moves BTC and ETH.
        public static let btcShare = 0.6
        /// Share of books that deposit USDC instead of USDT when the path moves USDC (a depeg path): their
        /// collateral falls with it.
        public static let usdcCollateralShare = 0.3
        /// Options and dated futures expire at least this long after the path ends (market time).
        public static let minimumDaysAfterPath = 30.0
        /// A book must need at most this share of its adjusted equity as initial margin in every mode and parameter
        /// set (room for the spread and fees of the opening trades); larger books are scaled by 0.7 until they fit.
        public static let openingIMRShare = 0.85
        public static let scaleStep = 0.7
        public static let maximumScalings = 12
    }

    /// The instruments a generated population may hold for the path's coins: the USDT and inverse perpetuals,
    /// the first USDT future and the first option expiry at least ``Generator/minimumDaysAfterPath`` after the
    /// path's end, and that expiry's calls and puts nearest to 0.85, 0.9, 1, 1.1 and 1.15 of the index.
    public static func universe(
        coins: [String], catalog: InstrumentCatalog, market: MarketSnapshot, pathEnd: UnixMillis
    ) throws(PopulationError) -> [Instrument] {
        let earliest = UnixMillis(pathEnd.rawValue + Int64(Generator.minimumDaysAfterPath * 86_400_000))
        var chosen: [Instrument] = []
        for coin in coins where !MarketSnapshot.stablecoins.contains(coin) {
            guard let index = try? market.indexUSD(coin) else {
                throw PopulationError(description: "the market snapshot has no \(coin)-USD index for the path's \(coin)")
            }
            let listed = catalog.instruments.filter { $0.underlying == coin && market.marks[$0.id.rawValue] != nil }
            for id in ["\(coin)-USDT-SWAP", "\(coin)-USD-SWAP"] {
                guard let perpetual = catalog.instrument(id), market.marks[id] != nil else {
                    throw PopulationError(description: "the catalog or market has no \(id); a generated population needs it for \(coin)")
                }
                chosen.append(perpetual)
            }
            let futures = listed.filter { $0.kind == .future && $0.quoteCurrency == "USDT" && ($0.expiry ?? earliest) >= earliest }
            if let future = futures.min(by: { ($0.expiry?.rawValue ?? 0) < ($1.expiry?.rawValue ?? 0) }) { chosen.append(future) }
            let options = listed.filter { $0.kind == .option && ($0.expiry.map { $0 >= earliest } ?? false) }
            guard let expiry = options.compactMap(\.expiry).min() else {
                throw PopulationError(
                    description:
                        "no \(coin) option expires 30 days after the path ends (\(pathEnd.iso8601)); the path is too long for the catalog")
            }
            let atExpiry = options.filter { $0.expiry == expiry }
            for kind in [OptionKind.call, .put] {
                let strikes = atExpiry.filter { $0.id.optionKind == kind }
                for target in [0.85, 0.9, 1.0, 1.1, 1.15] {
                    let best = strikes.min { abs(($0.id.strikeUSD ?? 0) - target * index) < abs(($1.id.strikeUSD ?? 0) - target * index) }
                    if let best, !chosen.contains(best) { chosen.append(best) }
                }
            }
        }
        return chosen.sorted { $0.id < $1.id }
    }

    /// `count` accounts drawn from `seed` (SplitMix64): the kind by ``BookKind/weight``, the coin (BTC 60 % when
    /// the path moves BTC and ETH), equity and leverage from ``Generator`` and ``BookKind``. Each book is then
    /// checked against the initial requirement of every mode and parameter set at `market` and scaled down
    /// until it fits, as the exchange would refuse it otherwise.
    public static func generate(
        count: Int, seed: UInt64, coins: [String], universe: [Instrument], market: MarketSnapshot, parameters: [MarginParameters]
    ) throws(PopulationError) -> Population {
        var random = SplitMix64(seed: seed)
        let tradable = coins.filter { !MarketSnapshot.stablecoins.contains($0) }.sorted()
        guard !tradable.isEmpty else {
            throw PopulationError(description: "the path moves no coin with derivatives (only \(coins.joined(separator: ", ")))")
        }
        var accounts: [AccountSpec] = []
        accounts.reserveCapacity(count)
        for number in 1...max(count, 1) where count > 0 {
            let kind = Self.drawKind(&random)
            let coin: String
            if tradable == ["BTC", "ETH"] {
                coin = random.uniform() < Generator.btcShare ? "BTC" : "ETH"
            } else {
                coin = tradable[Int(random.uniform() * Double(tradable.count)) % tradable.count]
            }
            let equityUSD = min(
                max(
                    (Generator.medianEquityUSD * Foundation.exp(Generator.equityLogSD * random.normal())).rounded(),
                    Generator.equityRangeUSD.lowerBound),
                Generator.equityRangeUSD.upperBound)
            let equity = (equityUSD / 100).rounded() * 100
            let stablecoin = coins.contains("USDC") && random.uniform() < Generator.usdcCollateralShare ? "USDC" : "USDT"
            var spec = try book(
                kind, coin: coin, equityUSD: equity, stablecoin: stablecoin, random: &random, universe: universe, market: market)
            spec.source = "generated #\(number)"
            try fit(&spec, universe: universe, market: market, parameters: parameters)
            accounts.append(spec)
        }
        var counts: [BookKind: Int] = [:]
        for account in accounts { if let kind = account.kind { counts[kind, default: 0] += 1 } }
        let mix = BookKind.allCases.map { "\(counts[$0] ?? 0) \($0.rawValue)" }.joined(separator: ", ")
        return Population(accounts: accounts, summary: "\(count) generated accounts (seed \(seed)): \(mix)")
    }

    static func drawKind(_ random: inout SplitMix64) -> BookKind {
        var draw = random.uniform()
        for kind in BookKind.allCases {
            if draw < kind.weight { return kind }
            draw -= kind.weight
        }
        return .optionBuying
    }

    /// One book of `kind` on `coin` for an account of `equityUSD`.
    static func book(
        _ kind: BookKind, coin: String, equityUSD: Double, stablecoin: String = "USDT", random: inout SplitMix64, universe: [Instrument],
        market: MarketSnapshot
    ) throws(PopulationError) -> AccountSpec {
        let index = (try? market.indexUSD(coin)) ?? 0
        func instrument(_ id: String) throws(PopulationError) -> Instrument {
            guard let found = universe.first(where: { $0.id.rawValue == id }) else {
                throw PopulationError(description: "the population universe has no \(id)")
            }
            return found
        }
        func option(_ kind: OptionKind, near moneyness: Double) throws(PopulationError) -> Instrument {
            let candidates = universe.filter { $0.underlying == coin && $0.id.optionKind == kind }
            guard
                let best = candidates.min(by: {
                    abs(($0.id.strikeUSD ?? 0) - moneyness * index) < abs(($1.id.strikeUSD ?? 0) - moneyness * index)
                })
            else { throw PopulationError(description: "the population universe has no \(coin) \(kind.rawValue)") }
            return best
        }
        func leverage() -> Double {
            let drawn = kind.medianLeverage * Foundation.exp(BookKind.leverageLogSD * random.normal())
            return min(max(drawn, BookKind.leverageRange.lowerBound), BookKind.leverageRange.upperBound)
        }
        func contracts(_ instrument: Instrument, coins: Double) -> ExactDecimal {
            let perContract: Double
            switch (instrument.kind, instrument.margining) {
            case (.option, _): perContract = instrument.coinsPerContract
            case (_, .inverse?): perContract = instrument.contractValue / index
            default: perContract = instrument.contractValue
            }
            return lots(instrument, abs(coins) / perContract)
        }
        func optionPremiumUSD(_ instrument: Instrument) -> Double {
            guard let resolved = try? market.market(for: instrument, path: instrument.id.rawValue) else { return 0 }
            return resolved.markPrice * resolved.indexUSD * instrument.coinsPerContract
        }
        var spec = AccountSpec(source: "", kind: kind, coin: coin, stablecoin: stablecoin, deposits: [], orders: [], leverageDrawn: nil)
        let usdt = ExactDecimal(Int(equityUSD))
        switch kind {
        case .directional:
            let lever = leverage()
            spec.leverageDrawn = lever
            let perpetual = try instrument(random.uniform() < 0.75 ? "\(coin)-USDT-SWAP" : "\(coin)-USD-SWAP")
            let long = random.uniform() < 0.6
            let size = contracts(perpetual, coins: lever * equityUSD / index)
            spec.deposits = [(stablecoin, usdt)]
            spec.orders = [.init(instrumentID: perpetual.id.rawValue, sizeContracts: long ? size : -size)]
        case .hedged:
            let lever = leverage()
            spec.leverageDrawn = lever
            let perpetual = try instrument("\(coin)-USDT-SWAP")
            let long = random.uniform() < 0.6
            let coins = lever * equityUSD / index
            let protection = try option(long ? .put : .call, near: long ? 0.9 : 1.1)
            let ratio = 0.5 + 0.5 * random.uniform()
            let optionSize = contracts(protection, coins: coins * ratio)
            let premiumUSD = optionPremiumUSD(protection) * LedgerBoundary.risk(optionSize)
            let perpetualSize = contracts(perpetual, coins: coins)
            spec.deposits = premiumDeposits(coin: coin, premiumUSD: premiumUSD, equityUSD: equityUSD, index: index, stablecoin: stablecoin)
            spec.orders = interleaved(
                [
                    .init(instrumentID: perpetual.id.rawValue, sizeContracts: long ? perpetualSize : -perpetualSize),
                    .init(instrumentID: protection.id.rawValue, sizeContracts: optionSize),
                ], instruments: universe)
        case .basis:
            let perpetual = try instrument("\(coin)-USDT-SWAP")
            if random.uniform() < 0.5 {
                // Cash and carry: 90 % of the equity in the coin, 10 % in USDT, the coin hedged 80–100 % short.
                spec.leverageDrawn = 1
                let coins = 0.9 * equityUSD / index
                let ratio = 0.8 + 0.2 * random.uniform()
                spec.deposits = [(coin, coinAmount(coins, coin: coin)), (stablecoin, ExactDecimal(Int(0.1 * equityUSD)))]
                spec.orders = [.init(instrumentID: perpetual.id.rawValue, sizeContracts: -contracts(perpetual, coins: coins * ratio))]
            } else {
                let lever = leverage()
                spec.leverageDrawn = 2 * lever
                guard let future = universe.first(where: { $0.underlying == coin && $0.kind == .future && $0.quoteCurrency == "USDT" })
                else {
                    throw PopulationError(description: "the population universe has no dated \(coin) USDT future for a calendar book")
                }
                let coins = lever * equityUSD / index
                spec.deposits = [(stablecoin, usdt)]
                spec.orders = interleaved(
                    [
                        .init(instrumentID: future.id.rawValue, sizeContracts: contracts(future, coins: coins)),
                        .init(instrumentID: perpetual.id.rawValue, sizeContracts: -contracts(perpetual, coins: coins)),
                    ], instruments: universe)
            }
        case .optionSelling:
            let lever = leverage()
            spec.leverageDrawn = lever
            let coins = lever * equityUSD / index
            spec.deposits = [(stablecoin, usdt)]
            if random.uniform() < 0.5 {
                let put = try option(.put, near: 0.9)
                spec.orders = [.init(instrumentID: put.id.rawValue, sizeContracts: -contracts(put, coins: coins))]
            } else {
                let put = try option(.put, near: 0.85)
                let call = try option(.call, near: 1.15)
                spec.orders = interleaved(
                    [
                        .init(instrumentID: put.id.rawValue, sizeContracts: -contracts(put, coins: coins / 2)),
                        .init(instrumentID: call.id.rawValue, sizeContracts: -contracts(call, coins: coins / 2)),
                    ], instruments: universe)
            }
        case .optionBuying:
            let share =
                BookKind.premiumShareRange.lowerBound
                + (BookKind.premiumShareRange.upperBound - BookKind.premiumShareRange.lowerBound) * random.uniform()
            spec.leverageDrawn = share
            let draw = random.uniform()
            let legs: [Instrument] =
                draw < 0.5
                ? [try option(.call, near: 1.1)]
                : draw < 0.8
                    ? [try option(.put, near: 0.9)]
                    : [try option(.call, near: 1.0), try option(.put, near: 1.0)]
            let budgetUSD = share * equityUSD / Double(legs.count)
            var orders: [AccountSpec.Order] = []
            var premiumUSD = 0.0
            for leg in legs {
                let perContract = optionPremiumUSD(leg)
                guard perContract > 0 else { continue }
                let size = lots(leg, budgetUSD / perContract)
                premiumUSD += perContract * LedgerBoundary.risk(size)
                orders.append(.init(instrumentID: leg.id.rawValue, sizeContracts: size))
            }
            spec.deposits = premiumDeposits(coin: coin, premiumUSD: premiumUSD, equityUSD: equityUSD, index: index, stablecoin: stablecoin)
            spec.orders = orders
        }
        return spec
    }

    /// A book with long options deposits the premium (and 10 % for fees and spread) in the coin that pays it,
    /// the rest of its equity in the stablecoin: coin-margined options are paid in the coin.
    static func premiumDeposits(
        coin: String, premiumUSD: Double, equityUSD: Double, index: Double, stablecoin: String = "USDT"
    ) -> [(currency: String, amount: ExactDecimal)] {
        let coinUSD = min(premiumUSD * 1.1, equityUSD * 0.9)
        var deposits: [(currency: String, amount: ExactDecimal)] = []
        if coinUSD > 0 { deposits.append((coin, coinAmount(coinUSD / index, coin: coin))) }
        deposits.append((stablecoin, ExactDecimal(Int(equityUSD - coinUSD))))
        return deposits
    }

    /// A coin amount rounded down to 10⁻⁸ coin, built from an integer (exact).
    static func coinAmount(_ coins: Double, coin: String) -> ExactDecimal {
        ExactDecimal(Int((coins * 100_000_000).rounded(.down))).divided(by: ExactDecimal(100_000_000))
    }

    /// Whole lots, at least the minimum size.
    static func lots(_ instrument: Instrument, _ contracts: Double) -> ExactDecimal {
        let lot = ExactDecimal(instrument.lotSize)
        let minimumLots = (instrument.minimumSize / instrument.lotSize).rounded(.up)
        let count = max((contracts / instrument.lotSize).rounded(.down), minimumLots)
        return ExactDecimal(Int(count)).multiplied(by: lot)
    }

    /// Splits two legs into up to four slices each and alternates them, so that the exchange's pre-trade check
    /// (one order at a time) never sees more than a quarter of one leg unhedged.
    static func interleaved(_ legs: [AccountSpec.Order], instruments: [Instrument]) -> [AccountSpec.Order] {
        var slices: [[AccountSpec.Order]] = []
        for leg in legs {
            guard let instrument = instruments.first(where: { $0.id.rawValue == leg.instrumentID }) else {
                slices.append([leg])
                continue
            }
            let lot = ExactDecimal(instrument.lotSize)
            let minimum = ExactDecimal(instrument.minimumSize)
            let total = leg.sizeContracts.magnitude
            let parts = 4
            let sliceLots = (LedgerBoundary.risk(total) / instrument.lotSize / Double(parts)).rounded(.down)
            let slice = ExactDecimal(Int(sliceLots)).multiplied(by: lot)
            guard slice >= minimum, slice.units > 0 else {
                slices.append([leg])
                continue
            }
            var pieces: [AccountSpec.Order] = []
            var left = total
            for part in 0..<parts {
                let size = part == parts - 1 ? left : slice
                left -= size
                pieces.append(.init(instrumentID: leg.instrumentID, sizeContracts: leg.sizeContracts.isNegative ? -size : size))
            }
            slices.append(pieces)
        }
        var result: [AccountSpec.Order] = []
        for position in 0..<(slices.map(\.count).max() ?? 0) {
            for pieces in slices where position < pieces.count { result.append(pieces[position]) }
        }
        return result
    }

    /// Scales `spec`'s orders by 0.7 until the book needs at most ``Generator/openingIMRShare`` of its adjusted
    /// equity as initial margin in portfolio margin and in classic under every parameter set.
    static func fit(
        _ spec: inout AccountSpec, universe: [Instrument], market: MarketSnapshot, parameters: [MarginParameters]
    ) throws(PopulationError) {
        for _ in 0...Generator.maximumScalings {
            if try fits(spec, universe: universe, market: market, parameters: parameters) { return }
            var scaled: [AccountSpec.Order] = []
            for order in spec.orders {
                guard let instrument = universe.first(where: { $0.id.rawValue == order.instrumentID }) else { continue }
                let size = lots(instrument, LedgerBoundary.risk(order.sizeContracts.magnitude) * Generator.scaleStep)
                scaled.append(.init(instrumentID: order.instrumentID, sizeContracts: order.sizeContracts.isNegative ? -size : size))
            }
            guard scaled != spec.orders else { break }
            spec.orders = scaled
            spec.scaledDown += 1
        }
        if try !fits(spec, universe: universe, market: market, parameters: parameters) {
            throw PopulationError(
                description: "\(spec.source): the smallest \(spec.kindName) book still needs more initial margin than its equity")
        }
    }

    /// Whether the book, opened at the marks, needs at most ``Generator/openingIMRShare`` of its adjusted
    /// equity in both modes under every parameter set. Premiums move cash as the trade would.
    static func fits(
        _ spec: AccountSpec, universe: [Instrument], market: MarketSnapshot, parameters: [MarginParameters]
    ) throws(PopulationError)
        -> Bool
    {
        let portfolio = try openedPortfolio(spec, universe: universe, market: market)
        for set in parameters {
            do {
                let pm = try PortfolioMargin.compute(portfolio, market: market, parameters: set)
                let classic = try ClassicMargin.compute(portfolio, market: market, parameters: set)
                if pm.totalImrUSD > Generator.openingIMRShare * pm.adjustedEquityUSD { return false }
                if classic.totalImrUSD > Generator.openingIMRShare * classic.adjustedEquityUSD { return false }
            } catch {
                throw PopulationError(description: "\(spec.source): \(error.description)")
            }
        }
        return true
    }

    /// The book as the engine sees it once opened at the marks: positions at the mark, premiums out of (long) or
    /// into (short) the settlement currency's cash.
    static func openedPortfolio(_ spec: AccountSpec, universe: [Instrument], market: MarketSnapshot) throws(PopulationError) -> Portfolio {
        var cash: [String: Double] = [:]
        for deposit in spec.deposits { cash[deposit.currency, default: 0] += LedgerBoundary.risk(deposit.amount) }
        var net: [String: Double] = [:]
        for order in spec.orders { net[order.instrumentID, default: 0] += LedgerBoundary.risk(order.sizeContracts) }
        var positions: [Position] = []
        for id in net.keys.sorted() {
            guard let size = net[id], size != 0, let instrument = universe.first(where: { $0.id.rawValue == id }) else { continue }
            let resolved: InstrumentMarket
            do { resolved = try market.market(for: instrument, path: id) } catch {
                throw PopulationError(description: "\(spec.source): \(error.description)")
            }
            positions.append(Position(instrument: instrument, sizeContracts: size, averagePrice: resolved.markPrice, source: id))
            if instrument.kind == .option {
                cash[instrument.settleCurrency, default: 0] -= size * instrument.coinsPerContract * resolved.markPrice
            }
        }
        return Portfolio(positions: positions, cashBalances: cash)
    }
}

/// SplitMix64, as the sandbox's random market uses: a seed reproduces every draw on every machine.
struct SplitMix64 {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform on [0, 1).
    mutating func uniform() -> Double { Double(next() >> 11) / Double(UInt64(1) << 53) }

    /// Standard normal (Box–Muller, one draw per call).
    mutating func normal() -> Double {
        let u1 = max(uniform(), 1e-300)
        let u2 = uniform()
        return (-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2)
    }
}

// MARK: - Given (Position Builder requests)

extension Population {
    /// The requests in `file`: a JSON array of Position Builder requests, or one request per line (JSON Lines).
    /// Each element is parsed by ``PositionBuilderRequest`` (unknown fields refused, errors naming the field).
    static func requests(file: String) throws -> [(source: String, json: JSONValue, request: PositionBuilderRequest)] {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw PopulationError(
                description: "\(file): " + (FileManager.default.fileExists(atPath: file) ? "cannot be read" : "no such file"))
        }
        let bytes = [UInt8](data)
        var documents: [(String, JSONValue)] = []
        let firstByte = bytes.first { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }
        if firstByte == UInt8(ascii: "[") {
            let json: JSONValue
            do { json = try JSONParser.parse(bytes) } catch { throw PopulationError(description: "\(file): \(error.description)") }
            guard case .array(let elements) = json else { throw PopulationError(description: "\(file): expected an array of requests") }
            for (index, element) in elements.enumerated() { documents.append(("\(file)[\(index)]", element)) }
        } else {
            for (number, line) in bytes.split(separator: 0x0A, omittingEmptySubsequences: false).enumerated() {
                guard line.contains(where: { ![0x20, 0x09, 0x0D].contains($0) }) else { continue }
                do { documents.append(("\(file):\(number + 1)", try JSONParser.parse(line))) } catch {
                    throw PopulationError(description: "\(file):\(number + 1): \(error.description)")
                }
            }
        }
        guard !documents.isEmpty else {
            throw PopulationError(description: "\(file): no request (a JSON array of Position Builder requests, or one per line)")
        }
        var result: [(source: String, json: JSONValue, request: PositionBuilderRequest)] = []
        for (source, json) in documents {
            do { result.append((source, json, try PositionBuilderRequest(json: json))) } catch {
                throw PopulationError(description: "\(source): \(error.description)")
            }
        }
        return result
    }

    /// The instruments the requests in `file` hold, and each path coin's USDT perpetual (the liquidation's delta
    /// hedge). A position or a coin balance on a coin the path does not move is refused: it would sit at the
    /// base market's price through the crash.
    public static func universe(file: String, coins: [String], catalog: InstrumentCatalog, market: MarketSnapshot) throws -> [Instrument] {
        var chosen = Set<String>()
        for coin in coins where !MarketSnapshot.stablecoins.contains(coin) {
            if catalog.instrument("\(coin)-USDT-SWAP") != nil, market.marks["\(coin)-USDT-SWAP"] != nil {
                chosen.insert("\(coin)-USDT-SWAP")
            }
        }
        for (source, _, request) in try requests(file: file) {
            for position in request.positions {
                guard let instrument = catalog.instrument(position.instrumentID), instrument.isDerivative else {
                    throw PopulationError(
                        description:
                            "\(source).\(position.path): instrument \"\(position.instrumentID)\" is not a derivative of the catalog")
                }
                guard coins.contains(instrument.underlying) else {
                    throw PopulationError(
                        description:
                            "\(source).\(position.path): \(position.instrumentID) is on \(instrument.underlying), which the path does not move "
                            + "(\(coins.joined(separator: ", "))); give a path for it or leave the position out")
                }
                guard market.marks[position.instrumentID] != nil else {
                    throw PopulationError(
                        description: "\(source).\(position.path): the market snapshot has no mark for \(position.instrumentID)")
                }
                chosen.insert(position.instrumentID)
            }
        }
        return chosen.sorted().compactMap { catalog.instrument($0) }
    }

    /// One account per request: its positive `simAsset` amounts are deposited (exactly, from the request's
    /// digits) and its `simPos` opened by market orders at the exchange's book (`avgPx` is not used: the
    /// exchange fills at its price). `acctLv` is not used either: every account runs in both modes. Requests
    /// that cannot be an account are refused with the field: a negative `simAsset` (a loan), `idxVol` (the
    /// path moves the market), `inclRealPosAndEq`, `spotInUse`, a position on a coin the path does not move, or
    /// net equity below portfolio margin's minimum.
    public static func load(
        file: String, catalog: InstrumentCatalog, market: MarketSnapshot, minimumNetEquityUSD: Double = 10_000
    ) throws -> Population {
        var accounts: [AccountSpec] = []
        for (source, json, request) in try requests(file: file) {
            if request.indexShock != nil {
                throw PopulationError(description: "\(source).idxVol: a backtest moves the market along the path; leave idxVol out")
            }
            if request.includeRealPositions {
                throw PopulationError(description: "\(source).inclRealPosAndEq: a backtest account has no real positions")
            }
            if !request.spotInUse.isEmpty {
                throw PopulationError(description: "\(source).spotInUse: not supported by the backtest (spot in use is derived)")
            }
            let root = FieldReader(json, path: source)
            var deposits: [(currency: String, amount: ExactDecimal)] = []
            var netEquityUSD = 0.0
            if let assets = try root.optional("simAsset") {
                for entry in try assets.elements() {
                    let currency = try entry.required("ccy").string()
                    let field = try entry.required("amt")
                    let text = try field.numberText()
                    guard let amount = ExactDecimal(text) else {
                        throw PopulationError(description: "\(field.path): \(text) is not a ledger amount")
                    }
                    guard !amount.isNegative else {
                        throw PopulationError(
                            description: "\(field.path): \(text) is a loan; a backtest account starts from deposits (amounts ≥ 0)")
                    }
                    guard let index = try? market.indexUSD(currency) else {
                        throw PopulationError(description: "\(entry.path).ccy: no \(currency)-USD index in the market snapshot")
                    }
                    if amount.units > 0 { deposits.append((currency, amount)) }
                    netEquityUSD += LedgerBoundary.risk(amount) * index
                }
            }
            guard netEquityUSD >= minimumNetEquityUSD else {
                throw PopulationError(
                    description:
                        "\(source).simAsset: \(DecimalText.format(netEquityUSD.rounded())) USD of deposits; portfolio margin needs "
                        + "\(DecimalText.format(minimumNetEquityUSD)) USD of net equity, and every account runs in both modes")
            }
            var orders: [AccountSpec.Order] = []
            if let positions = try root.optional("simPos") {
                for entry in try positions.elements() {
                    let id = try entry.required("instId").string()
                    let field = try entry.required("pos")
                    let text = try field.numberText()
                    guard let size = ExactDecimal(text), !size.isZero else {
                        throw PopulationError(description: "\(field.path): \(text) is not a size in contracts")
                    }
                    guard catalog.instrument(id) != nil else {
                        throw PopulationError(description: "\(entry.path).instId: \(id) is not in the backtest's universe")
                    }
                    orders.append(.init(instrumentID: id, sizeContracts: size))
                }
            }
            let coin = orders.first.flatMap { catalog.instrument($0.instrumentID)?.underlying }
            accounts.append(AccountSpec(source: source, kind: nil, coin: coin, deposits: deposits, orders: orders, leverageDrawn: nil))
        }
        return Population(accounts: accounts, summary: "\(accounts.count) accounts from \(file)")
    }
}
