/// The components of a risk unit's requirement (docs/methodology/02-margin.md), named as OKX
/// names them.
public enum RiskComponent: String, Sendable, CaseIterable, Hashable {
    case mr1 = "MR1"
    case mr2 = "MR2"
    case mr3 = "MR3"
    case mr4 = "MR4"
    case mr5 = "MR5"
    case mr6 = "MR6"
    case mr7 = "MR7"
    case mr8 = "MR8"
    case mr9 = "MR9"
}

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
    public var vegaShockByExpiry: ExpiryBuckets

    public static let empty = UnitExposure(
        scenarioPnLUSD: [Double](repeating: 0, count: ScenarioLayout.count), derivativeCoinDelta: 0,
        cashDeltaUSD: [0, 0, 0], minimumChargeUSD: 0, vegaShockByExpiry: ExpiryBuckets())

    /// Overwrites `self` with `other`, reusing storage (marginal MMR evaluates one such copy per position).
    public mutating func assign(_ other: UnitExposure) {
        Self.copy(other.scenarioPnLUSD, into: &scenarioPnLUSD)
        Self.copy(other.cashDeltaUSD, into: &cashDeltaUSD)
        derivativeCoinDelta = other.derivativeCoinDelta
        minimumChargeUSD = other.minimumChargeUSD
        vegaShockByExpiry.assign(other.vegaShockByExpiry)
    }

    /// Overwrites `self` with `other` less `sizeContracts` of `risk` (the exposure without one
    /// position, for its marginal MMR; `a − size × b` per figure, in one pass).
    public mutating func assign(_ other: UnitExposure, removing risk: InstrumentRisk, sizeContracts: Double) {
        scenarioPnLUSD.withUnsafeMutableBufferPointer { target in
            other.scenarioPnLUSD.withUnsafeBufferPointer { source in
                risk.scenarioPnLUSD.withUnsafeBufferPointer { removed in
                    for index in 0..<min(target.count, source.count, removed.count) {
                        target[index] = source[index] - sizeContracts * removed[index]
                    }
                }
            }
        }
        Self.copy(other.cashDeltaUSD, into: &cashDeltaUSD)
        derivativeCoinDelta = other.derivativeCoinDelta - sizeContracts * risk.coinDelta
        cashDeltaUSD[risk.leg.rawValue] -= sizeContracts * risk.cashDeltaUSD
        minimumChargeUSD = other.minimumChargeUSD - Self.minimumCharge(risk, sizeContracts: sizeContracts)
        vegaShockByExpiry.assign(other.vegaShockByExpiry)
        if let expiry = risk.optionExpiry { vegaShockByExpiry.add(-(sizeContracts * risk.vegaShockUSD), at: expiry) }
    }

    private static func copy(_ source: [Double], into target: inout [Double]) {
        guard source.count == target.count else {
            target = source
            return
        }
        target.withUnsafeMutableBufferPointer { target in
            source.withUnsafeBufferPointer { source in
                for index in 0..<source.count { target[index] = source[index] }
            }
        }
    }

    /// `target += scale × source`, element by element.
    private static func accumulate(_ source: [Double], scale: Double, into target: inout [Double]) {
        target.withUnsafeMutableBufferPointer { target in
            source.withUnsafeBufferPointer { source in
                for index in 0..<min(source.count, target.count) { target[index] += scale * source[index] }
            }
        }
    }

    /// Adds `sizeContracts` of a derivative (negative sizes are shorts).
    public mutating func add(_ risk: InstrumentRisk, sizeContracts: Double) {
        Self.accumulate(risk.scenarioPnLUSD, scale: sizeContracts, into: &scenarioPnLUSD)
        derivativeCoinDelta += sizeContracts * risk.coinDelta
        cashDeltaUSD[risk.leg.rawValue] += sizeContracts * risk.cashDeltaUSD
        minimumChargeUSD += Self.minimumCharge(risk, sizeContracts: sizeContracts)
        if let expiry = risk.optionExpiry { vegaShockByExpiry.add(sizeContracts * risk.vegaShockUSD, at: expiry) }
    }

    /// Adds spot in use (coins, signed) with the coin's spot scenario vector. Spot in use has no MR7.
    public mutating func addSpot(_ spotRisk: InstrumentRisk, coins: Double) {
        Self.accumulate(spotRisk.scenarioPnLUSD, scale: coins, into: &scenarioPnLUSD)
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

/// MR1–MR9 of one risk unit and its requirements (docs/methodology/02-margin.md §3–§12). Every value is finite and ≥ 0.
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
    /// The component that sets the MMR (MR1, MR2, MR6, MR3, MR4, MR5, MR9 or MR7's floor), or nil when the
    /// MMR is zero.
    public var dominant: RiskComponent?
    /// The largest scenario component (MR1, MR2, MR6, MR3, MR4, MR5, MR9), whether or not MR7's floor sets
    /// the MMR, or nil when all are zero: the risk a liquidation hedge step acts on
    /// (docs/methodology/04-liquidation.md).
    public var dominantScenario: RiskComponent?

    /// Computes the components from a unit's exposure (arithmetic: ``ComponentContext/charges(pnl:vega:minimumChargeUSD:cashDeltaUSD:tier:)``).
    public init(
        _ exposure: UnitExposure, tier: RiskTier, market: MarketSnapshot, parameters: MarginParameters
    ) throws(EngineError) {
        try self.init(exposure, tier: tier, context: ComponentContext(parameters: parameters, market: market))
    }

    init(_ exposure: UnitExposure, tier: RiskTier, context: ComponentContext) throws(EngineError) {
        self.init(
            try context.charges(exposure, tier: tier), layout: ScenarioLayout(context.tierParameters(tier)), pnl: exposure.scenarioPnLUSD)
    }

    /// The reported components of `charges`; `pnl` is the vector they came from.
    init(_ charges: ComponentCharges, layout: ScenarioLayout, pnl: [Double]) {
        (mr1, mr2, mr3, mr4, mr5, mr6, mr7, mr9) = (
            charges.mr1, charges.mr2, charges.mr3, charges.mr4, charges.mr5, charges.mr6, charges.mr7, charges.mr9
        )
        mmr = charges.mmr
        imr = charges.imr
        let mr1Cell = charges.mr1WorstIndex
        mr1Worst = WorstCell(
            index: mr1Cell, pnlUSD: pnl[mr1Cell], spotMove: layout.mr1Moves[mr1Cell % ScenarioLayout.mr1MoveCount],
            volatilityState: VolatilityState(rawValue: mr1Cell / ScenarioLayout.mr1MoveCount) ?? .up)
        let mr6Cell = charges.mr6WorstIndex - ScenarioLayout.mr6Start
        mr6Worst = WorstCell(
            index: charges.mr6WorstIndex, pnlUSD: pnl[charges.mr6WorstIndex], spotMove: layout.mr6Moves[mr6Cell % 2],
            volatilityState: VolatilityState(rawValue: mr6Cell / 2) ?? .up)
        // Values within 1e-12 relative are ties (MR6 = 0.5 × a 24 % move equals MR1's 12 % move up to
        // rounding for linear books); ties go to the earlier name in MR1, MR2, MR6, MR3, MR4, MR5, MR9.
        func exceeds(_ value: Double, _ reference: Double) -> Bool { value > reference * (1 + 1e-12) }
        let core = charges.core
        let candidates: [(RiskComponent, Double)] = [
            (.mr1, mr1), (.mr2, mr2), (.mr6, mr6), (.mr3, mr3), (.mr4, mr4), (.mr5, mr5), (.mr9, mr9),
        ]
        var best = candidates[0]
        for candidate in candidates.dropFirst() where exceeds(candidate.1, best.1) { best = candidate }
        dominantScenario = core > 0 ? best.0 : nil
        if mmr == 0 {
            dominant = nil
        } else if exceeds(mr7, core) {
            dominant = .mr7
        } else {
            dominant = best.0
        }
    }
}

extension ComponentContext {
    /// The charges of a unit's exposure.
    func charges(_ exposure: UnitExposure, tier: RiskTier) throws(EngineError) -> ComponentCharges {
        let legs = (exposure.cashDeltaUSD[0], exposure.cashDeltaUSD[1], exposure.cashDeltaUSD[2])
        return try exposure.scenarioPnLUSD.withUnsafeBufferPointer { pnl throws(EngineError) in
            try charges(
                pnl: pnl, vega: exposure.vegaShockByExpiry, minimumChargeUSD: exposure.minimumChargeUSD, cashDeltaUSD: legs, tier: tier)
        }
    }
}
