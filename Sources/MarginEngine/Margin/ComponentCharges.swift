/// Σ cash vega × MR3 shock (USD) per option expiry, kept sorted by expiry so MR3 sums in a fixed order.
///
/// A handful of expiries per unit: a sorted array beats a dictionary and allocates nothing once its
/// capacity is reached.
public struct ExpiryBuckets: Sendable, Equatable {
    public private(set) var expiries: [UnixMillis] = []
    public private(set) var shocksUSD: [Double] = []

    public init() {}

    /// Adds `amountUSD` to `expiry`'s bucket, creating it in order.
    public mutating func add(_ amountUSD: Double, at expiry: UnixMillis) {
        if expiries.last.map({ $0 < expiry }) ?? true {
            expiries.append(expiry)
            shocksUSD.append(0 + amountUSD)
            return
        }
        var index = 0
        while index < expiries.count, expiries[index] < expiry { index += 1 }
        if index < expiries.count, expiries[index] == expiry {
            shocksUSD[index] += amountUSD
        } else {
            expiries.insert(expiry, at: index)
            shocksUSD.insert(0 + amountUSD, at: index)
        }
    }

    public mutating func removeAll() {
        expiries.removeAll(keepingCapacity: true)
        shocksUSD.removeAll(keepingCapacity: true)
    }

    /// Overwrites `self` with `other`, reusing storage.
    public mutating func assign(_ other: ExpiryBuckets) {
        guard expiries.count == other.expiries.count else {
            expiries = other.expiries
            shocksUSD = other.shocksUSD
            return
        }
        expiries.withUnsafeMutableBufferPointer { target in
            other.expiries.withUnsafeBufferPointer { source in
                for index in 0..<source.count { target[index] = source[index] }
            }
        }
        shocksUSD.withUnsafeMutableBufferPointer { target in
            other.shocksUSD.withUnsafeBufferPointer { source in
                for index in 0..<source.count { target[index] = source[index] }
            }
        }
    }

    /// The bucket of `expiry`, 0 when absent.
    public subscript(expiry: UnixMillis) -> Double {
        guard let index = expiries.firstIndex(of: expiry) else { return 0 }
        return shocksUSD[index]
    }
}

/// What the component arithmetic needs beyond a unit's summed exposure, prepared once per market and
/// parameter set: the tier parameters, the MR7 bands per tier and the stablecoin indices MR9 reads.
///
/// Shared by the reporting path (``RiskUnitComponents``) and the batch kernel (``BatchMargin``), so both
/// run the same arithmetic in the same order.
struct ComponentContext: Sendable {
    let parameters: MarginParameters
    /// Per tier, in `RiskTier.allCases` order: MR6 loss factor, IMR factor and MR7 bands.
    private let tierConstants: [(mr6LossFactor: Double, imrFactor: Double, mr7Bands: [ProgressiveBand])]
    /// MR9's rate bands for the pairs (USDT, USD), (USDT, USDC), (USDC, USD) at the market's stablecoin
    /// deviations, or the error naming the missing index (thrown only if a unit hedges that pair).
    let usdtUsdBands: Result<[ProgressiveBand], EngineError>
    let usdtUsdcBands: Result<[ProgressiveBand], EngineError>
    let usdcUsdBands: Result<[ProgressiveBand], EngineError>

    init(parameters: MarginParameters, usdtUSD: Result<Double, EngineError>, usdcUSD: Result<Double, EngineError>) {
        self.parameters = parameters
        tierConstants = RiskTier.allCases.map { tier in
            let tierParameters = parameters.derivatives[tier] ?? parameters.derivativeParameters(for: "")
            return (tierParameters.mr6LossFactor, tierParameters.imrFactor, parameters.mr7Bands(for: tier))
        }
        let table = parameters.mr9
        usdtUsdBands = usdtUSD.map { table.schedule(deviation: abs(1 - $0)) }
        usdcUsdBands = usdcUSD.map { table.schedule(deviation: abs(1 - $0)) }
        usdtUsdcBands = usdtUSD.flatMap { usdt in usdcUSD.map { usdc in table.schedule(deviation: abs(1 - usdt / usdc)) } }
    }

    init(parameters: MarginParameters, market: MarketSnapshot) {
        self.init(
            parameters: parameters, usdtUSD: Result { () throws(EngineError) in try market.indexUSD("USDT") },
            usdcUSD: Result { () throws(EngineError) in try market.indexUSD("USDC") })
    }

    func tierParameters(_ tier: RiskTier) -> TierParameters {
        parameters.derivatives[tier] ?? parameters.derivativeParameters(for: "")
    }

    private static func slot(_ tier: RiskTier) -> Int {
        switch tier {
        case .tier1: 0
        case .tier2: 1
        case .tier3: 2
        }
    }

    /// MR1–MR9, MMR and IMR of a unit from its summed exposure, without allocating.
    ///
    /// ```
    /// MR1 = max(0, −min cell),  MR6 = factor × max(0, −min extreme cell)
    /// MR2 = max(0, −decay),     MR4 = max(0, −min(up, down)),  MR5 = max(0, −min(+Δr, −Δr))
    /// MR3 = k·(Σ_e |V_e s_e| − |Σ_e V_e s_e|)
    /// MR7 = progressive(raw, tier bands)
    /// MR9 = Σ pairs progressive(hedge, rates of the pair's deviation column)
    /// MMR = max(max(MR1, MR2, MR6) + MR3 + MR4 + MR5 + MR9, MR7),  IMR = imrFactor × MMR
    /// ```
    func charges(
        pnl: UnsafeBufferPointer<Double>, vega: ExpiryBuckets, minimumChargeUSD: Double, cashDeltaUSD: (Double, Double, Double),
        tier: RiskTier
    ) throws(EngineError) -> ComponentCharges {
        let constants = tierConstants[Self.slot(tier)]
        // Every min and max below would drop a NaN silently (`min(x, .nan)` is x): refuse it first.
        for index in 0..<pnl.count where !pnl[index].isFinite {
            throw .badMarketData(
                name: "\(tier.rawValue) risk unit",
                detail: "scenario \(index) P&L is \(pnl[index]); a market or parameter value made it non-finite")
        }
        for (name, value) in [
            ("MR7 charge", minimumChargeUSD), ("USDT cash delta", cashDeltaUSD.0), ("USDC cash delta", cashDeltaUSD.1),
            ("USD cash delta", cashDeltaUSD.2),
        ] where !value.isFinite {
            throw .badMarketData(name: "\(tier.rawValue) risk unit", detail: "\(name) is \(value)")
        }
        for value in vega.shocksUSD where !value.isFinite {
            throw .badMarketData(name: "\(tier.rawValue) risk unit", detail: "an expiry's vega shock is \(value)")
        }
        var mr1Worst = ScenarioLayout.mr1Index(move: 3, state: .up)
        var worst = Double.infinity
        // Ties go to the smaller move, then the fall, then the state in `VolatilityState` order (Methodology).
        for move in ScenarioLayout.mr1SearchOrder {
            for state in VolatilityState.allCases {
                let index = ScenarioLayout.mr1Index(move: move, state: state)
                if pnl[index] < worst {
                    worst = pnl[index]
                    mr1Worst = index
                }
            }
        }
        var mr6Worst = ScenarioLayout.mr6Index(move: 0, state: .up)
        var extreme = Double.infinity
        for state in VolatilityState.allCases {
            for move in 0..<2 {
                let index = ScenarioLayout.mr6Index(move: move, state: state)
                if pnl[index] < extreme {
                    extreme = pnl[index]
                    mr6Worst = index
                }
            }
        }
        var grossVega = 0.0
        var netVega = 0.0
        for value in vega.shocksUSD {
            grossVega += abs(value)
            netVega += value
        }
        var charges = ComponentCharges(
            mr1: max(0, -worst), mr2: max(0, -pnl[ScenarioLayout.mr2]),
            mr3: max(0, parameters.mr3Factor * (grossVega - abs(netVega))),
            mr4: max(0, -min(pnl[ScenarioLayout.mr4Up], pnl[ScenarioLayout.mr4Down])),
            mr5: max(0, -min(pnl[ScenarioLayout.mr5Up], pnl[ScenarioLayout.mr5Down])),
            mr6: constants.mr6LossFactor * max(0, -extreme),
            mr7: progressiveCharge(max(0, minimumChargeUSD), bands: constants.mr7Bands),
            mr9: try depegCharge(cashDeltaUSD), mmr: 0, imr: 0, mr1WorstIndex: mr1Worst, mr6WorstIndex: mr6Worst)
        charges.mmr = max(charges.core, charges.mr7)
        charges.imr = constants.imrFactor * charges.mmr
        return charges
    }

    /// MR9: matched opposite cash deltas (USDT, USDC, USD legs) of the pairs (USDT, USD), (USDT, USDC),
    /// (USDC, USD), in that order, each charged progressively at the rates of the pair's price-deviation
    /// column. A stablecoin index is read only for a pair that is actually hedged.
    func depegCharge(_ cashDeltaUSD: (Double, Double, Double)) throws(EngineError) -> Double {
        var usdt = cashDeltaUSD.0
        var usdc = cashDeltaUSD.1
        var usd = cashDeltaUSD.2
        var charge = 0.0
        /// Matches opposite deltas `a` and `b`, returning the hedged amount.
        func match(_ a: inout Double, _ b: inout Double) -> Double {
            let hedge = min(abs(a), abs(b))
            a = a > 0 ? a - hedge : a + hedge
            b = b > 0 ? b - hedge : b + hedge
            return hedge
        }
        if usdt * usd < 0 { charge += progressiveCharge(match(&usdt, &usd), bands: try usdtUsdBands.get()) }
        if usdt * usdc < 0 { charge += progressiveCharge(match(&usdt, &usdc), bands: try usdtUsdcBands.get()) }
        if usdc * usd < 0 { charge += progressiveCharge(match(&usdc, &usd), bands: try usdcUsdBands.get()) }
        return charge
    }
}

/// The components of one unit as numbers only (the batch path); ``RiskUnitComponents`` adds the reporting.
struct ComponentCharges: Sendable {
    var mr1, mr2, mr3, mr4, mr5, mr6, mr7, mr9: Double
    var mmr, imr: Double
    /// Scenario-vector indices of the worst MR1 cell (ties to the smaller move, the fall, then the earlier
    /// volatility state) and MR6 cell (ties to the earlier state, then the fall).
    var mr1WorstIndex: Int
    var mr6WorstIndex: Int

    /// The scenario and additive part of the MMR, before the MR7 floor.
    var core: Double { max(mr1, mr2, mr6) + mr3 + mr4 + mr5 + mr9 }
}
