/// The summed exposure of one risk unit: scenario P&L vectors and the scalars MR3, MR7 and MR9 need.
///
/// Built by adding positions (`size × per-contract figures`) in a fixed order, so the same portfolio always
/// gives the same bits; removing a position subtracts its figures, which is how marginal MMR is found
/// without repricing.
public struct UnitExposure: Sendable, Equatable {
    public var scenarioPnLUSD: [Double]
    /// Derivative delta in coins (spot in use excluded), for sizing spot in use.
    public var derivativeCoinDelta: Double
    /// Cash delta in USD per settlement leg (`SettlementLeg.rawValue` index).
    public var cashDeltaUSD: [Double]
    /// Unscaled MR7 charge in USD (gross over positions).
    public var minimumChargeUSD: Double
    /// Σ cash vega × MR3 shock (USD) by option expiry.
    public var vegaShockByExpiry: [UnixMillis: Double]

    public static let empty = UnitExposure(
        scenarioPnLUSD: [Double](repeating: 0, count: ScenarioLayout.count), derivativeCoinDelta: 0,
        cashDeltaUSD: [0, 0, 0], minimumChargeUSD: 0, vegaShockByExpiry: [:])

    /// Adds `sizeContracts` of a derivative (negative sizes are shorts).
    public mutating func add(_ risk: InstrumentRisk, sizeContracts: Double) {
        for index in 0..<ScenarioLayout.count { scenarioPnLUSD[index] += sizeContracts * risk.scenarioPnLUSD[index] }
        derivativeCoinDelta += sizeContracts * risk.coinDelta
        cashDeltaUSD[risk.leg.rawValue] += sizeContracts * risk.cashDeltaUSD
        minimumChargeUSD += Self.minimumCharge(risk, sizeContracts: sizeContracts)
        if let expiry = risk.optionExpiry {
            vegaShockByExpiry[expiry, default: 0] += sizeContracts * risk.vegaShockUSD
        }
    }

    /// Removes what ``add(_:sizeContracts:)`` added.
    public mutating func remove(_ risk: InstrumentRisk, sizeContracts: Double) {
        for index in 0..<ScenarioLayout.count { scenarioPnLUSD[index] -= sizeContracts * risk.scenarioPnLUSD[index] }
        derivativeCoinDelta -= sizeContracts * risk.coinDelta
        cashDeltaUSD[risk.leg.rawValue] -= sizeContracts * risk.cashDeltaUSD
        minimumChargeUSD -= Self.minimumCharge(risk, sizeContracts: sizeContracts)
        if let expiry = risk.optionExpiry {
            vegaShockByExpiry[expiry, default: 0] -= sizeContracts * risk.vegaShockUSD
        }
    }

    /// Adds spot in use (coins, signed) with the coin's spot scenario vector. Spot in use has no MR7.
    public mutating func addSpot(_ spotRisk: InstrumentRisk, coins: Double) {
        for index in 0..<ScenarioLayout.count { scenarioPnLUSD[index] += coins * spotRisk.scenarioPnLUSD[index] }
        cashDeltaUSD[SettlementLeg.usd.rawValue] += coins * spotRisk.cashDeltaUSD
    }

    /// A position's MR7 charge before band scaling: gross, and for a long option never more than its value.
    public static func minimumCharge(_ risk: InstrumentRisk, sizeContracts: Double) -> Double {
        let charge = abs(sizeContracts) * risk.minimumChargeUSD
        if risk.optionExpiry != nil, sizeContracts > 0 { return min(charge, sizeContracts * risk.optionValueUSD) }
        return charge
    }
}

/// The worst MR1 cell.
public struct WorstCell: Sendable, Equatable {
    /// Index in the scenario vector.
    public var index: Int
    /// The cell's P&L in USD (≤ 0 for MR1, since the unchanged cell is 0).
    public var pnlUSD: Double
    public var spotMove: Double
    public var volatilityState: VolatilityState
}

/// MR1–MR9 of one risk unit and its requirements (spec 02 §3–§12). Every value is finite and ≥ 0.
public struct RiskUnitComponents: Sendable, Equatable {
    public var mr1: Double
    public var mr2: Double
    public var mr3: Double
    public var mr4: Double
    public var mr5: Double
    public var mr6: Double
    public var mr7: Double
    public var mr9: Double
    public var mr1Worst: WorstCell
    /// MR6's worst cell, undiscounted.
    public var mr6Worst: WorstCell
    public var mmr: Double
    public var imr: Double
    /// The component that sets the MMR (`MR1`, `MR2`, `MR6`, `MR3`, `MR4`, `MR5`, `MR9`, `MR7`), or `""`
    /// when the MMR is zero.
    public var dominant: String

    /// Computes the components from a unit's exposure.
    ///
    /// ```
    /// MR1 = max(0, −min cell),  MR6 = factor × max(0, −min extreme cell)
    /// MR2 = max(0, −decay),     MR4 = max(0, −min(up, down)),  MR5 = max(0, −min(+Δr, −Δr))
    /// MR3 = k·(Σ_e |V_e s_e| − |Σ_e V_e s_e|)
    /// MR7 = progressive(raw, tier bands)
    /// MR9 = Σ pairs progressive(hedge, rates of the pair's deviation column)
    /// MMR = max(max(MR1, MR2, MR6) + MR3 + MR4 + MR5 + MR9, MR7),  IMR = imrFactor × MMR
    /// ```
    public init(
        _ exposure: UnitExposure, tier: RiskTier, market: MarketSnapshot, parameters: MarginParameters
    ) throws(EngineError) {
        let tierParameters = parameters.derivatives[tier] ?? parameters.derivativeParameters(for: "")
        let layout = ScenarioLayout(tierParameters)
        let pnl = exposure.scenarioPnLUSD

        var worst = WorstCell(index: ScenarioLayout.mr1Index(move: 3, state: .up), pnlUSD: .infinity, spotMove: 0, volatilityState: .up)
        for state in VolatilityState.allCases {
            for move in ScenarioLayout.mr1SearchOrder {
                let index = ScenarioLayout.mr1Index(move: move, state: state)
                if pnl[index] < worst.pnlUSD {
                    worst = WorstCell(index: index, pnlUSD: pnl[index], spotMove: layout.mr1Moves[move], volatilityState: state)
                }
            }
        }
        mr1Worst = worst
        mr1 = max(0, -worst.pnlUSD)

        var extreme = WorstCell(index: ScenarioLayout.mr6Index(move: 0, state: .up), pnlUSD: .infinity, spotMove: 0, volatilityState: .up)
        for state in VolatilityState.allCases {
            for move in 0..<2 {
                let index = ScenarioLayout.mr6Index(move: move, state: state)
                if pnl[index] < extreme.pnlUSD {
                    extreme = WorstCell(index: index, pnlUSD: pnl[index], spotMove: layout.mr6Moves[move], volatilityState: state)
                }
            }
        }
        mr6Worst = extreme
        mr6 = tierParameters.mr6LossFactor * max(0, -extreme.pnlUSD)

        mr2 = max(0, -pnl[ScenarioLayout.mr2])
        mr4 = max(0, -min(pnl[ScenarioLayout.mr4Up], pnl[ScenarioLayout.mr4Down]))
        mr5 = max(0, -min(pnl[ScenarioLayout.mr5Up], pnl[ScenarioLayout.mr5Down]))

        var grossVega = 0.0
        var netVega = 0.0
        for expiry in exposure.vegaShockByExpiry.keys.sorted() {
            let value = exposure.vegaShockByExpiry[expiry] ?? 0
            grossVega += abs(value)
            netVega += value
        }
        mr3 = max(0, parameters.mr3Factor * (grossVega - abs(netVega)))

        mr7 = progressiveCharge(max(0, exposure.minimumChargeUSD), bands: parameters.mr7Bands(for: tier))
        mr9 = try Self.depegCharge(exposure.cashDeltaUSD, market: market, table: parameters.mr9)

        let scenarioCharge = max(mr1, mr2, mr6)
        let core = scenarioCharge + mr3 + mr4 + mr5 + mr9
        mmr = max(core, mr7)
        imr = tierParameters.imrFactor * mmr
        // Values within 1e-12 relative are ties (MR6 = 0.5 × a 24 % move equals MR1's 12 % move up to
        // rounding for linear books); ties go to the earlier name in MR1, MR2, MR6, MR3, MR4, MR5, MR9.
        func exceeds(_ value: Double, _ reference: Double) -> Bool { value > reference * (1 + 1e-12) }
        if mmr == 0 {
            dominant = ""
        } else if exceeds(mr7, core) {
            dominant = "MR7"
        } else {
            let candidates: [(String, Double)] = [("MR1", mr1), ("MR2", mr2), ("MR6", mr6), ("MR3", mr3), ("MR4", mr4), ("MR5", mr5), ("MR9", mr9)]
            var best = candidates[0]
            for candidate in candidates.dropFirst() where exceeds(candidate.1, best.1) { best = candidate }
            dominant = best.0
        }
    }

    /// MR9: matched opposite cash deltas of (USDT, USD), (USDT, USDC), (USDC, USD), in that order, each
    /// charged progressively at the rates of the pair's price-deviation column.
    /// The stablecoin indices are read only for a pair that is actually hedged; a linear leg can exist only
    /// if its stablecoin's index was found when the position was priced.
    static func depegCharge(
        _ cashDeltaUSD: [Double], market: MarketSnapshot, table: StablecoinDepegTable
    ) throws(EngineError) -> Double {
        var deltas = cashDeltaUSD
        let pairs: [(SettlementLeg, SettlementLeg)] = [(.usdt, .usd), (.usdt, .usdc), (.usdc, .usd)]
        var charge = 0.0
        for (first, second) in pairs {
            let a = deltas[first.rawValue]
            let b = deltas[second.rawValue]
            guard a * b < 0 else { continue }
            let deviation: Double
            switch (first, second) {
            case (.usdt, .usd): deviation = abs(1 - (try market.indexUSD("USDT")))
            case (.usdc, .usd): deviation = abs(1 - (try market.indexUSD("USDC")))
            default: deviation = abs(1 - (try market.indexUSD("USDT")) / (try market.indexUSD("USDC")))
            }
            let hedge = min(abs(a), abs(b))
            deltas[first.rawValue] = a > 0 ? a - hedge : a + hedge
            deltas[second.rawValue] = b > 0 ? b - hedge : b + hedge
            charge += progressiveCharge(hedge, bands: table.schedule(deviation: deviation))
        }
        return charge
    }
}
