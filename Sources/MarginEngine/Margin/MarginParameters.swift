/// The liquidity tier of an underlying coin; it selects shock sizes, basis, minimum charges and bands.
public enum RiskTier: String, Sendable, Hashable, CaseIterable {
    case tier1, tier2, tier3
}

/// How spot in use enters a risk unit's requirement (docs/methodology/02-margin.md §12).
public enum SpotHedgeAggregation: String, Sendable, Hashable {
    /// Spot in use sits inside the unit's scenarios and offsets derivative risk (OKX's published rule).
    case hedged
    /// Each unit is computed with and without its spot in use and keeps the larger MMR (the brief's literal
    /// formula, docs/methodology/README.md).
    case conservativeMax
}

/// Per-tier derivatives parameters (docs/methodology/parameters.md, "Derivatives margin").
public struct TierParameters: Sendable, Equatable {
    /// MR1 spot moves as positive fractions (`[0.04, 0.08, 0.12]`); the grid uses 0 and ± each.
    public var mr1SpotMoves: [Double]
    /// MR6 extreme move as a positive fraction (0.24).
    public var mr6ExtremeMove: Double
    /// MR6 = factor × worst loss (0.5).
    public var mr6LossFactor: Double
    /// MR4 basis move of a perpetual, a fraction of its price.
    public var perpBasis: Double
    /// MR4 annualised basis move of a future or option expiry.
    public var annualBasis: Double
    /// MR4 basis move of spot in use.
    public var spotBasis: Double
    /// MR7 rate on |cash delta| of perpetuals and futures.
    public var mr7RateLinear: Double
    /// MR7 rate on the underlying notional of options.
    public var mr7RateOption: Double
    /// MR7 band bounds are divided by this number for the tier.
    public var mr7BandDivisor: Double
    /// IMR = factor × MMR.
    public var imrFactor: Double
}

/// One band of a progressive (tax-bracket) schedule: the slice up to `upTo` is charged at `rate`.
public struct ProgressiveBand: Sendable, Equatable {
    /// Upper bound of the band (USD or coins, by context); nil for the last, open band.
    public var upTo: Double?
    public var rate: Double

    public init(upTo: Double?, rate: Double) {
        self.upTo = upTo
        self.rate = rate
    }
}

/// One row of the volatility shock table (docs/methodology/02-margin.md §3).
public struct VolatilityShockRow: Sendable, Equatable {
    public var days: Double
    /// Up shock in volatility points (30.0 = +0.30).
    public var upPoints: Double
    /// Up shock as a fraction of volatility (1.387 = +138.7 %).
    public var upPercent: Double
    public var downPoints: Double
    public var downPercent: Double
}

/// MR9's rate table: rows are hedge-size bands (USD), columns deviation buckets of `|1 − index|`.
public struct StablecoinDepegTable: Sendable, Equatable {
    /// Upper bounds of the deviation columns except the last, ascending (`[0.005, 0.01, …]`).
    public var deviationBounds: [Double]
    /// Upper bound (USD) of each hedge band, nil for the last.
    public var bandUpTo: [Double?]
    /// `rates[band][column]`.
    public var rates: [[Double]]

    /// The progressive schedule for a pair whose price deviates from 1 by `deviation`.
    public func schedule(deviation: Double) -> [ProgressiveBand] {
        let column = deviationBounds.firstIndex { deviation <= $0 } ?? deviationBounds.count
        return zip(bandUpTo, rates).map { ProgressiveBand(upTo: $0, rate: $1[column]) }
    }
}

/// One tier of the borrowing requirements, progressive over a liability's USD value.
public struct BorrowingBand: Sendable, Equatable {
    public var upToUSD: Double?
    public var mmrRate: Double
    public var imrRate: Double
}

/// Interest-free quota of a currency: `base + max(0, equity of plusEquityOf)` (docs/methodology/03-account.md §4).
public struct InterestFreeQuota: Sendable, Equatable {
    public var base: Double
    public var plusEquityOf: String?
}

/// Utilisation-based annual interest rate `base + slope1·min(u, kink) + slope2·(u − kink)⁺`.
public struct InterestRateCurve: Sendable, Equatable {
    public var base: Double
    public var slope1: Double
    public var kink: Double
    public var slope2: Double
    /// The lending pool in the currency's own units; nil when given in USD (``lendingPoolUSD``).
    public var lendingPool: Double?
    public var lendingPoolUSD: Double?
}

/// One classic-mode position tier (docs/methodology/03-account.md §6).
public struct ClassicPositionTier: Sendable, Equatable {
    public var upToUSD: Double?
    public var mmrRate: Double
    public var maxLeverage: Double
}

/// OKX's coin-margined option margin coefficients (docs/methodology/03-account.md §6).
public struct ClassicOptionCoefficients: Sendable, Equatable {
    public var a: Double
    public var b: Double
    public var c: Double

    public init(a: Double, b: Double, c: Double) {
        self.a = a
        self.b = b
        self.c = c
    }
}

/// The funding rate of a perpetual per funding interval (docs/methodology/06-sandbox-api.md §4, OKX's published
/// structure):
/// ```
/// premium = (mark − index) / index
/// rate    = clamp( premium + clamp(interestRate − premium, ±interestClamp), ±cap )
/// ```
public struct FundingFormula: Sendable, Equatable {
    public var interestRate: Double
    public var interestClamp: Double
    public var cap: Double

    public init(interestRate: Double, interestClamp: Double, cap: Double) {
        self.interestRate = interestRate
        self.interestClamp = interestClamp
        self.cap = cap
    }

    /// The rate for a perpetual marked at `markPrice` against its index `indexPrice` (same quote).
    public func rate(markPrice: Double, indexPrice: Double) -> Double {
        let premium = (markPrice - indexPrice) / indexPrice
        return min(max(premium + min(max(interestRate - premium, -interestClamp), interestClamp), -cap), cap)
    }
}

/// A complete, validated parameter set (docs/methodology/parameters.md), identified by ``id``.
///
/// Every value is data: a risk team changes margin by publishing a new set, never by changing code.
public struct MarginParameters: Sendable {
    public var id: String
    public var tierOfCoin: [String: RiskTier]
    public var tierOfOtherCoins: RiskTier
    public var derivatives: [RiskTier: TierParameters]
    public var mr7Bands: [ProgressiveBand]
    public var mr2HorizonDays: Double
    public var mr3Factor: Double
    public var mr5RateShift: Double
    public var volatilityFloor: Double
    public var spotHedgeAggregation: SpotHedgeAggregation
    public var volatilityShock: [VolatilityShockRow]
    public var mr9: StablecoinDepegTable
    public var collateralTiers: [String: [ProgressiveBand]]
    /// The penalty of collateral sold in liquidation is `1 − tier rate`, clamped to [minimum, maximum];
    /// a currency without a discount table pays the maximum.
    public var liquidationPenaltyMinimum: Double
    public var liquidationPenaltyMaximum: Double
    public var borrowingBands: [BorrowingBand]
    public var borrowLimits: [String: Double]
    public var borrowLimitOtherUSD: Double
    public var interestFreeQuotas: [String: InterestFreeQuota]
    public var interestRates: [String: InterestRateCurve]
    public var interestRateOther: InterestRateCurve
    public var classicPositionTiers: [RiskTier: [ClassicPositionTier]]
    public var classicOptions: [String: ClassicOptionCoefficients]
    public var classicOptionOther: ClassicOptionCoefficients
    public var classicOptionMarginFactor: Double
    /// Leverage of a classic position whose leverage is not set (capped by its tier's maximum).
    public var classicDefaultLeverage: Double
    public var pmMinimumNetEquityUSD: Double
    public var liquidationTriggerRatio: Double
    public var liquidationStopRatio: Double
    public var warningRatio: Double
    public var liquidationSlippage: [RiskTier: Double]
    public var liquidationFeeRate: [RiskTier: Double]
    public var hedgePerpetualSettleCurrency: String
    /// Liquidation slices aim at `liquidationStop × (1 + buffer)` rather than exactly at the stop.
    public var liquidationSliceBuffer: Double
    public var fees: [String: Double]
    public var halfSpread: [RiskTier: Double]
    public var fundingHoursUTC: [Int]
    /// The perpetual funding rate's formula (docs/methodology/06-sandbox-api.md §4).
    public var funding: FundingFormula
    /// Fee on the notional of a future or option settled at expiry (0 by default).
    public var settlementFeeRate: Double
    public var maximumPositions: Int
    /// The longest time to expiry MR4 scales its annual basis by: a future or option expiry further out is
    /// charged the basis move of this tenor, so that `annualBasis × maximumTenorYears < 1` (checked when the
    /// set loads) keeps every curve-down price above zero.
    public var maximumTenorYears: Double

    /// The tier of an underlying coin.
    public func tier(of coin: String) -> RiskTier { tierOfCoin[coin] ?? tierOfOtherCoins }

    /// The derivatives parameters of a coin's tier.
    public func derivativeParameters(for coin: String) -> TierParameters {
        // Loading guarantees every tier is present.
        derivatives[tier(of: coin)] ?? derivatives[.tier1]!
    }

    /// The MR7 bands of a tier: the tier-1 bounds divided by the tier's divisor.
    public func mr7Bands(for tier: RiskTier) -> [ProgressiveBand] {
        let divisor = derivatives[tier]?.mr7BandDivisor ?? 1
        return mr7Bands.map { ProgressiveBand(upTo: $0.upTo.map { $0 / divisor }, rate: $0.rate) }
    }

    /// An option's volatility in the three volatility states (``VolatilityState`` order: up, same, down):
    /// shifted by the larger of the points and percentage shocks at its expiry, the down state floored at
    /// `min(σ, volatilityFloor)`.
    public func stateVolatilities(_ volatility: Double, timeToExpiryYears years: Double) -> [Double] {
        let shock = volatilityShock(days: years * 365)
        let upShift = max(shock.upPoints * 0.01, shock.upPercent * volatility)
        let downShift = max(shock.downPoints * 0.01, shock.downPercent * volatility)
        return [volatility + upShift, volatility, max(volatility - downShift, min(volatility, volatilityFloor))]
    }

    /// The volatility shock at `days` to expiry, interpolated linearly in days and flat outside the table.
    public func volatilityShock(days: Double) -> VolatilityShockRow {
        let rows = volatilityShock
        guard let first = rows.first, let last = rows.last else {
            return VolatilityShockRow(days: days, upPoints: 0, upPercent: 0, downPoints: 0, downPercent: 0)
        }
        if days <= first.days { return first }
        if days >= last.days { return last }
        let upper = rows.firstIndex { $0.days >= days } ?? rows.count - 1
        let a = rows[upper - 1]
        let b = rows[upper]
        let weight = (days - a.days) / (b.days - a.days)
        func mix(_ x: Double, _ y: Double) -> Double { x + (y - x) * weight }
        return VolatilityShockRow(
            days: days, upPoints: mix(a.upPoints, b.upPoints), upPercent: mix(a.upPercent, b.upPercent),
            downPoints: mix(a.downPoints, b.downPoints), downPercent: mix(a.downPercent, b.downPercent))
    }
}

/// A progressive charge: each slice of `amount` is multiplied by its band's rate, like tax brackets.
///
/// `amount` ≤ 0 charges nothing. Bands must be ascending; the last may be open (`upTo == nil`); an amount
/// beyond a closed last band is charged at the last band's rate.
/// - Complexity: O(bands).
public func progressiveCharge(_ amount: Double, bands: [ProgressiveBand]) -> Double {
    guard amount > 0 else { return 0 }
    var charged = 0.0
    var lower = 0.0
    for (position, band) in bands.enumerated() {
        let isLast = position == bands.count - 1
        let upper = isLast ? Double.infinity : (band.upTo ?? .infinity)
        if amount <= lower { break }
        charged += (min(amount, upper) - lower) * band.rate
        lower = upper
    }
    return charged
}
