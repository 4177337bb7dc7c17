import RealModule

/// Black-76 price and sensitivities of a European option on a forward.
///
/// All inputs and outputs are per 1 unit of underlying, in the forward's currency (USD here); multiply by
/// the position's coins outside.
/// ```
/// stdDev = σ√T,  d1 = (ln(F/K) + stdDev²/2) / stdDev,  d2 = d1 − stdDev
/// call = D·(F·N(d1) − K·N(d2)),   put = D·(K·N(−d2) − F·N(−d1)),   N(x) = erfc(−x/√2)/2
/// ```
/// Greeks follow QuantLib's `BlackCalculator` with the spot equal to the forward: ``delta`` = ∂V/∂F,
/// ``gamma`` = ∂²V/∂F², ``vega`` = ∂V/∂σ per 1.00 of volatility, ``theta`` = −∂V/∂T per year with the
/// forward and the rate fixed, ``rho`` = ∂V/∂r per 1.00 of rate with the forward fixed (= −T·V).
///
/// Degenerate case: when `stdDev` is below 1e-12 the value is the discounted intrinsic value, delta a step
/// (half a step exactly at the money), and gamma and vega are zero.
public struct Black76: Sendable, Equatable {
    public let kind: OptionKind
    /// Discounted option value per unit of underlying.
    public let price: Double
    /// ∂price/∂forward (coins of underlying per coin).
    public let delta: Double
    /// ∂²price/∂forward².
    public let gamma: Double
    /// ∂price/∂σ for an absolute change of 1.00 in volatility (not 1 vol point).
    public let vega: Double
    /// −∂price/∂T per year, forward and rate fixed (QuantLib `BlackCalculator::theta(F, T)`).
    public let theta: Double
    /// ∂price/∂r per 1.00 of the continuously compounded rate, forward fixed.
    public let rho: Double

    /// Vega per volatility point (an absolute change of 0.01).
    public var vegaPerVolPoint: Double { vega * 0.01 }
    /// Theta per calendar day (QuantLib `thetaPerDay`: theta / 365).
    public var thetaPerDay: Double { theta / 365 }
    /// Rho per 1 % of rate.
    public var rhoPerPercent: Double { rho * 0.01 }

    /// Prices the option.
    /// - Parameters:
    ///   - forward: forward price F > 0 (USD per coin).
    ///   - strike: strike K > 0 (USD per coin).
    ///   - volatility: σ ≥ 0 as a fraction (0.65 for 65 %).
    ///   - timeToExpiryYears: T ≥ 0 on ACT/365.
    ///   - discountFactor: D = exp(−r·T) in (0, ∞).
    public init(
        _ kind: OptionKind, forward: Double, strike: Double, volatility: Double, timeToExpiryYears: Double,
        discountFactor: Double = 1
    ) {
        precondition(
            forward > 0 && strike > 0 && volatility >= 0 && timeToExpiryYears >= 0 && discountFactor > 0,
            "Black76 needs F > 0, K > 0, σ ≥ 0, T ≥ 0, D > 0; got F=\(forward) K=\(strike) σ=\(volatility) T=\(timeToExpiryYears) D=\(discountFactor)"
        )
        self.kind = kind
        let sign: Double = kind == .call ? 1 : -1
        let stdDev = volatility * timeToExpiryYears.squareRoot()
        // r from D; zero when T is zero (then only the value matters).
        let rate = timeToExpiryYears > 0 ? -Double.log(discountFactor) / timeToExpiryYears : 0
        guard stdDev >= 1e-12 else {
            let intrinsic = max(sign * (forward - strike), 0)
            price = discountFactor * intrinsic
            if forward == strike {
                delta = 0.5 * discountFactor * sign
            } else {
                delta = intrinsic > 0 ? discountFactor * sign : 0
            }
            gamma = 0
            vega = 0
            theta = rate * price
            rho = -timeToExpiryYears * price
            return
        }
        let d1 = (Double.log(forward / strike) + 0.5 * stdDev * stdDev) / stdDev
        let d2 = d1 - stdDev
        let cdfSignedD1 = Self.normalCDF(sign * d1)
        let cdfSignedD2 = Self.normalCDF(sign * d2)
        let densityD1 = Self.normalPDF(d1)
        price = discountFactor * sign * (forward * cdfSignedD1 - strike * cdfSignedD2)
        delta = discountFactor * sign * cdfSignedD1
        gamma = discountFactor * densityD1 / (forward * stdDev)
        vega = discountFactor * forward * densityD1 * timeToExpiryYears.squareRoot()
        theta = rate * price - discountFactor * forward * densityD1 * volatility / (2 * timeToExpiryYears.squareRoot())
        rho = -timeToExpiryYears * price
    }

    /// The discounted value only — the inner loop of scenario pricing.
    @inlinable
    public static func price(
        _ kind: OptionKind, forward: Double, strike: Double, volatility: Double, timeToExpiryYears: Double,
        discountFactor: Double = 1
    ) -> Double {
        let sign: Double = kind == .call ? 1 : -1
        let stdDev = volatility * timeToExpiryYears.squareRoot()
        guard stdDev >= 1e-12 else { return discountFactor * max(sign * (forward - strike), 0) }
        let d1 = (Double.log(forward / strike) + 0.5 * stdDev * stdDev) / stdDev
        let d2 = d1 - stdDev
        let value = discountFactor * sign * (forward * normalCDF(sign * d1) - strike * normalCDF(sign * d2))
        return max(value, 0)
    }

    /// Standard normal cumulative distribution, N(x) = erfc(−x/√2)/2, accurate in both tails.
    @inlinable
    public static func normalCDF(_ x: Double) -> Double { 0.5 * Double.erfc(-x * 0.707_106_781_186_547_524_4) }

    /// Standard normal density.
    @inlinable
    public static func normalPDF(_ x: Double) -> Double { 0.398_942_280_401_432_677_9 * Double.exp(-0.5 * x * x) }
}
