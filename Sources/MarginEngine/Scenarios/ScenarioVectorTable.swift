/// Every instrument of a market priced once under every scenario (SPAN's lesson), laid out flat for
/// account-level aggregation: an account's scenario P&L is then `Σ size × vector`, with no pricing per
/// account.
///
/// The table covers a fixed universe — the instruments and currencies it was first built with — in
/// ascending id order, so an instrument keeps its index from one market to the next (an account book built
/// against one table stays valid for the next) and an account's positions sorted by index are in the
/// engine's canonical order (and grouped by coin, because every id starts with `COIN-`). Instruments the
/// market cannot price (expired, unmarked) stay in the universe, marked unpriced.
///
/// Immutable; a class so that workers and accounts share one table without copying its columns.
public final class ScenarioVectorTable: Sendable {
    public let marketTime: UnixMillis
    public let parametersID: String
    /// The universe of derivatives, ascending by id; a position refers to one by its index.
    public let instruments: [Instrument]
    /// Their scenario vectors (same order); nil for an instrument the market cannot price.
    public let risks: [InstrumentRisk?]
    /// Instruments the market could not price, with the reason.
    public let unpriced: [(id: String, reason: String)]
    let indexByID: [String: Int32]
    /// The resolved market of each priced instrument, to reuse unchanged vectors in the next table.
    let markets: [InstrumentMarket?]

    // Flat per-instrument columns for the batch kernel.
    let pnl: [Double]
    let coinDelta: [Double]
    let cashDelta: [Double]
    let leg: [UInt8]
    let minimumCharge: [Double]
    let optionValue: [Double]
    let isOption: [Bool]
    let expiry: [Int64]
    let vegaShock: [Double]
    let coin: [Int32]
    let settleCurrency: [Int32]
    public let markPrice: [Double]
    let contractValue: [Double]
    let coinsPerContract: [Double]
    /// 0 linear, 1 inverse, 2 option (for equity contributions).
    let valuation: [UInt8]
    /// Whether the instrument is priced (its columns are meaningful).
    public let isPriced: [Bool]
    // Classic margin: notional per contract, short-option margins per coin, the coin's index and tier.
    let notionalPerContract: [Double]
    let classicMmrCoins: [Double]
    let classicImrCoins: [Double]
    let underlyingIndexUSD: [Double]
    let classicTiers: [[ClassicPositionTier]]

    /// Currencies of the universe: every coin and settlement currency of its instruments, USD, USDT, USDC,
    /// and the extra currencies it was built with (collateral without instruments).
    public let currencies: [String]
    let currencyIndexByCode: [String: Int32]
    let currencyIndexUSD: [Double?]
    let currencyTier: [RiskTier]
    /// Spot-in-use scenario vector per currency (for coins).
    let spotPnL: [Double]

    /// Prices every derivative of `instruments` the market can price; `extraCurrencies` joins the currency
    /// universe (balances in them are valued at their index).
    /// - Complexity: 32 Black-76 evaluations per option.
    public convenience init(
        instruments: [Instrument], market: MarketSnapshot, parameters: MarginParameters, extraCurrencies: [String] = []
    ) {
        let universe = instruments.filter(\.isDerivative).sorted { $0.id < $1.id }
        var currencies = Set(["USD", "USDT", "USDC"]).union(extraCurrencies)
        for instrument in universe {
            currencies.insert(instrument.underlying)
            currencies.insert(instrument.settleCurrency)
        }
        self.init(universe: universe, currencies: currencies.sorted(), market: market, parameters: parameters, previous: nil)
    }

    /// The same universe priced at `market`, reusing the scenario vector of every instrument whose resolved
    /// market (mark, indices, forward, volatility, time to expiry) did not change: only instruments whose
    /// inputs moved are priced again.
    public convenience init(updating previous: ScenarioVectorTable, market: MarketSnapshot, parameters: MarginParameters) {
        self.init(
            universe: previous.instruments, currencies: previous.currencies, market: market, parameters: parameters, previous: previous)
    }

    private init(
        universe: [Instrument], currencies: [String], market: MarketSnapshot, parameters: MarginParameters, previous: ScenarioVectorTable?
    ) {
        let reuse = previous.flatMap { $0.parametersID == parameters.id ? $0 : nil }
        var risks: [InstrumentRisk?] = []
        var markets: [InstrumentMarket?] = []
        var unpriced: [(String, String)] = []
        risks.reserveCapacity(universe.count)
        markets.reserveCapacity(universe.count)
        for (position, instrument) in universe.enumerated() {
            if let expiry = instrument.expiry, expiry <= market.valuationTime {
                risks.append(nil)
                markets.append(nil)
                unpriced.append((instrument.id.rawValue, "expired at \(expiry.iso8601)"))
                continue
            }
            do {
                let resolved = try market.market(for: instrument, path: instrument.id.rawValue)
                if let reuse, let old = reuse.markets[position], let risk = reuse.risks[position], old.hasSameInputs(as: resolved) {
                    risks.append(risk)
                } else {
                    risks.append(InstrumentRisk(resolved, parameters: parameters))
                }
                markets.append(resolved)
            } catch {
                risks.append(nil)
                markets.append(nil)
                unpriced.append((instrument.id.rawValue, error.description))
            }
        }
        marketTime = market.valuationTime
        parametersID = parameters.id
        instruments = universe
        self.risks = risks
        self.markets = markets
        self.unpriced = unpriced.map { (id: $0.0, reason: $0.1) }
        var index: [String: Int32] = [:]
        for (position, instrument) in universe.enumerated() { index[instrument.id.rawValue] = Int32(position) }
        indexByID = index
        self.currencies = currencies
        let currencyIndex = Dictionary(uniqueKeysWithValues: currencies.enumerated().map { ($1, Int32($0)) })
        currencyIndexByCode = currencyIndex
        currencyIndexUSD = currencies.map { try? market.indexUSD($0) }
        currencyTier = currencies.map { parameters.tier(of: $0) }
        var spot = [Double](repeating: 0, count: currencies.count * ScenarioLayout.count)
        for (position, currency) in currencies.enumerated() {
            guard let indexUSD = currencyIndexUSD[position] else { continue }
            let vector = InstrumentRisk(spotIndexUSD: indexUSD, parameters: parameters.derivativeParameters(for: currency)).scenarioPnLUSD
            for cell in 0..<ScenarioLayout.count { spot[position * ScenarioLayout.count + cell] = vector[cell] }
        }
        spotPnL = spot
        let zeros = [Double](repeating: 0, count: ScenarioLayout.count)
        var pnl: [Double] = []
        pnl.reserveCapacity(risks.count * ScenarioLayout.count)
        for risk in risks { pnl += risk?.scenarioPnLUSD ?? zeros }
        self.pnl = pnl
        isPriced = risks.map { $0 != nil }
        coinDelta = risks.map { $0?.coinDelta ?? 0 }
        cashDelta = risks.map { $0?.cashDeltaUSD ?? 0 }
        leg = risks.map { UInt8($0?.leg.rawValue ?? 0) }
        minimumCharge = risks.map { $0?.minimumChargeUSD ?? 0 }
        optionValue = risks.map { $0?.optionValueUSD ?? 0 }
        isOption = universe.map { $0.kind == .option }
        expiry = risks.map { $0?.optionExpiry?.rawValue ?? 0 }
        vegaShock = risks.map { $0?.vegaShockUSD ?? 0 }
        coin = universe.map { currencyIndex[$0.underlying] ?? 0 }
        settleCurrency = universe.map { currencyIndex[$0.settleCurrency] ?? 0 }
        markPrice = markets.map { $0?.markPrice ?? 0 }
        contractValue = universe.map(\.contractValue)
        coinsPerContract = universe.map(\.coinsPerContract)
        valuation = universe.map { $0.kind == .option ? 2 : ($0.margining == .inverse ? 1 : 0) }
        notionalPerContract = markets.map { $0?.notionalUSDPerContract ?? 0 }
        let shortOptionMargins = markets.map { market in market.flatMap { ClassicMargin.shortOptionMarginCoins($0, parameters: parameters) }
        }
        classicMmrCoins = shortOptionMargins.map { $0?.mmrCoins ?? 0 }
        classicImrCoins = shortOptionMargins.map { $0?.imrCoins ?? 0 }
        underlyingIndexUSD = markets.map { $0?.indexUSD ?? 0 }
        classicTiers = universe.map { parameters.classicPositionTiers[parameters.tier(of: $0.underlying)] ?? [] }
    }

    /// The index of an instrument id, or nil when the universe does not hold it.
    public func index(of id: String) -> Int32? { indexByID[id] }

    /// The resolved market of instrument `index` (nil when unpriced).
    public func market(at index: Int32) -> InstrumentMarket? { markets[Int(index)] }

    /// The index of a currency code, or nil.
    public func currencyIndex(of code: String) -> Int32? { currencyIndexByCode[code] }

    /// Scenario vectors by instrument id of every priced instrument, for
    /// ``PortfolioMargin/compute(_:market:parameters:risks:)``.
    public var risksByID: [String: InstrumentRisk] {
        var byID: [String: InstrumentRisk] = [:]
        for (instrument, risk) in zip(instruments, risks) { if let risk { byID[instrument.id.rawValue] = risk } }
        return byID
    }

    /// The number of priced instruments.
    public var pricedCount: Int { isPriced.lazy.filter { $0 }.count }

    /// Indices of currencies whose USD index differs from `other`'s (same currency list).
    public func changedCurrencies(since other: ScenarioVectorTable) -> Set<Int32> {
        var changed = Set<Int32>()
        for (position, currency) in currencies.enumerated() {
            let old = other.currencyIndexByCode[currency].flatMap { other.currencyIndexUSD[Int($0)] }
            if old != currencyIndexUSD[position] { changed.insert(Int32(position)) }
        }
        return changed
    }

    /// Whether each instrument's scenario vector or market figures differ from `other`'s (same universe):
    /// the accounts holding only unchanged instruments need no re-margining when balances did not move.
    public func changedInstrumentFlags(since other: ScenarioVectorTable) -> [Bool] {
        precondition(other.instruments.count == instruments.count, "tables of different universes")
        return instruments.indices.map { position in
            switch (risks[position], other.risks[position]) {
            case (nil, nil): return false
            case (let new?, let old?):
                if new === old { return false }
                let base = position * ScenarioLayout.count
                let same =
                    markPrice[position] == other.markPrice[position] && coinDelta[position] == other.coinDelta[position]
                    && notionalPerContract[position] == other.notionalPerContract[position]
                    && classicMmrCoins[position] == other.classicMmrCoins[position]
                    && classicImrCoins[position] == other.classicImrCoins[position]
                    && (0..<ScenarioLayout.count).allSatisfy { pnl[base + $0] == other.pnl[base + $0] }
                return !same
            default: return true
            }
        }
    }

    /// Indices of instruments whose scenario vector or market figures differ from `other`'s.
    public func changedInstruments(since other: ScenarioVectorTable) -> Set<Int32> {
        Set(changedInstrumentFlags(since: other).enumerated().compactMap { $0.element ? Int32($0.offset) : nil })
    }
}
