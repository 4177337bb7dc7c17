/// Every instrument of a market priced once under every scenario (SPAN's lesson, `STYLE.md` §11), laid out
/// flat for account-level aggregation: an account's scenario P&L is then `Σ size × vector`, with no pricing
/// per account.
///
/// Instruments are indexed in ascending id order, so an account's positions sorted by index are in the
/// engine's canonical order (and grouped by coin, because every id starts with `COIN-`).
///
/// Immutable; a class so that workers and accounts share one table without copying its columns.
public final class ScenarioVectorTable: Sendable {
    public let marketTime: UnixMillis
    public let parametersID: String
    /// The priced instruments, ascending by id; a position refers to one by its index.
    public let instruments: [Instrument]
    /// Their scenario vectors (same order), for ``PortfolioMargin/compute(_:market:parameters:risks:)``.
    public let risks: [InstrumentRisk]
    /// Instruments the market could not price, with the reason (they are not in the table).
    public let unpriced: [(id: String, reason: String)]
    let indexByID: [String: Int32]

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

    /// Coins and currencies seen (coins first appear through instruments; stablecoins and USD too).
    public let currencies: [String]
    let currencyIndexUSD: [Double?]
    let currencyTier: [RiskTier]
    /// Spot-in-use scenario vector per currency (for coins), and its cash delta per coin.
    let spotPnL: [Double]

    /// Prices every instrument of `instruments` the market can price.
    /// - Complexity: 32 Black-76 evaluations per option.
    public convenience init(instruments: [Instrument], market: MarketSnapshot, parameters: MarginParameters) {
        var priced: [Instrument] = []
        var risks: [InstrumentRisk] = []
        var unpriced: [(String, String)] = []
        for instrument in instruments.sorted(by: { $0.id < $1.id }) where instrument.isDerivative {
            do {
                let resolved = try market.market(for: instrument, path: instrument.id.rawValue)
                risks.append(InstrumentRisk(resolved, parameters: parameters))
                priced.append(instrument)
            } catch {
                unpriced.append((instrument.id.rawValue, error.description))
            }
        }
        self.init(priced: priced, risks: risks, unpriced: unpriced, market: market, parameters: parameters)
    }

    init(priced: [Instrument], risks: [InstrumentRisk], unpriced: [(String, String)], market: MarketSnapshot, parameters: MarginParameters) {
        marketTime = market.valuationTime
        parametersID = parameters.id
        instruments = priced
        self.risks = risks
        self.unpriced = unpriced.map { (id: $0.0, reason: $0.1) }
        var index: [String: Int32] = [:]
        for (position, instrument) in priced.enumerated() { index[instrument.id.rawValue] = Int32(position) }
        indexByID = index
        var currencies = Set(["USD", "USDT", "USDC"])
        for instrument in priced {
            currencies.insert(instrument.underlying)
            currencies.insert(instrument.settleCurrency)
        }
        self.currencies = currencies.sorted()
        let currencyIndex = Dictionary(uniqueKeysWithValues: self.currencies.enumerated().map { ($1, Int32($0)) })
        currencyIndexUSD = self.currencies.map { try? market.indexUSD($0) }
        currencyTier = self.currencies.map { parameters.tier(of: $0) }
        var spot = [Double](repeating: 0, count: self.currencies.count * ScenarioLayout.count)
        for (position, currency) in self.currencies.enumerated() {
            guard let indexUSD = currencyIndexUSD[position] else { continue }
            let vector = InstrumentRisk(spotIndexUSD: indexUSD, parameters: parameters.derivativeParameters(for: currency)).scenarioPnLUSD
            for cell in 0..<ScenarioLayout.count { spot[position * ScenarioLayout.count + cell] = vector[cell] }
        }
        spotPnL = spot
        var pnl: [Double] = []
        pnl.reserveCapacity(risks.count * ScenarioLayout.count)
        for risk in risks { pnl += risk.scenarioPnLUSD }
        self.pnl = pnl
        coinDelta = risks.map(\.coinDelta)
        cashDelta = risks.map(\.cashDeltaUSD)
        leg = risks.map { UInt8($0.leg.rawValue) }
        minimumCharge = risks.map(\.minimumChargeUSD)
        optionValue = risks.map(\.optionValueUSD)
        isOption = priced.map { $0.kind == .option }
        expiry = risks.map { $0.optionExpiry?.rawValue ?? 0 }
        vegaShock = risks.map(\.vegaShockUSD)
        coin = priced.map { currencyIndex[$0.underlying] ?? 0 }
        settleCurrency = priced.map { currencyIndex[$0.settleCurrency] ?? 0 }
        markPrice = risks.map { $0.market?.markPrice ?? 0 }
        contractValue = priced.map(\.contractValue)
        coinsPerContract = priced.map(\.coinsPerContract)
        valuation = priced.map { $0.kind == .option ? 2 : ($0.margining == .inverse ? 1 : 0) }
    }

    /// The index of an instrument id, or nil when the table does not hold it.
    public func index(of id: String) -> Int32? { indexByID[id] }

    /// The index of a currency code, or nil.
    public func currencyIndex(of code: String) -> Int32? {
        currencies.firstIndex(of: code).map { Int32($0) }
    }

    /// Scenario vectors by instrument id, for ``PortfolioMargin/compute(_:market:parameters:risks:)``.
    public var risksByID: [String: InstrumentRisk] {
        Dictionary(uniqueKeysWithValues: zip(instruments.map(\.id.rawValue), risks))
    }

    /// Indices of currencies whose USD index differs from `other`'s (same currency list).
    public func changedCurrencies(since other: ScenarioVectorTable) -> Set<Int32> {
        var changed = Set<Int32>()
        for (position, currency) in currencies.enumerated() {
            let old = other.currencies.firstIndex(of: currency).flatMap { other.currencyIndexUSD[$0] }
            if old != currencyIndexUSD[position] { changed.insert(Int32(position)) }
        }
        return changed
    }

    /// Indices of instruments whose scenario vector or market figures differ from `other`'s (the accounts
    /// holding only unchanged instruments need no re-margining when balances did not move).
    public func changedInstruments(since other: ScenarioVectorTable) -> Set<Int32> {
        var changed = Set<Int32>()
        for (position, instrument) in instruments.enumerated() {
            guard let old = other.index(of: instrument.id.rawValue) else {
                changed.insert(Int32(position))
                continue
            }
            let base = position * ScenarioLayout.count
            let oldBase = Int(old) * ScenarioLayout.count
            let same = markPrice[position] == other.markPrice[Int(old)] && coinDelta[position] == other.coinDelta[Int(old)]
                && (0..<ScenarioLayout.count).allSatisfy { pnl[base + $0] == other.pnl[oldBase + $0] }
            if !same { changed.insert(Int32(position)) }
        }
        return changed
    }
}
