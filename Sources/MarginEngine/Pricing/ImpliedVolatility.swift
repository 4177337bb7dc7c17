/// Why a price has no Black-76 implied volatility in the engine's range.
public enum ImpliedVolatilityError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The price lies outside the no-arbitrage bounds `[D·max(±(F−K), 0), D·F or D·K]`.
    case outsideNoArbitrageBounds(price: Double, lower: Double, upper: Double)
    /// The solution lies outside `[minimumVolatility, maximumVolatility]`.
    case outsideVolatilityRange(price: Double, priceAtMinimum: Double, priceAtMaximum: Double)

    public var description: String {
        switch self {
        case .outsideNoArbitrageBounds(let price, let lower, let upper):
            return "price \(DecimalText.format(price)) USD is outside the no-arbitrage bounds "
                + "[\(DecimalText.format(lower)), \(DecimalText.format(upper))]"
        case .outsideVolatilityRange(let price, let low, let high):
            return "price \(DecimalText.format(price)) USD implies a volatility outside [0.005, 10] "
                + "(prices \(DecimalText.format(low)) to \(DecimalText.format(high)))"
        }
    }
}

/// Black-76 implied volatility by safeguarded Newton iteration.
///
/// Newton steps in σ are taken inside a bisection bracket that always contains the root; a step that
/// leaves the bracket, or a vanishing vega, falls back to bisection. The price is monotone in σ, so the
/// bracket shrinks at every step and the method always terminates (at most 200 iterations).
public enum ImpliedVolatility {
    public static let minimumVolatility = 0.005
    public static let maximumVolatility = 10.0

    /// The σ in [0.005, 10] at which the Black-76 value equals `price` (USD per coin, discounted).
    ///
    /// A price between the discounted intrinsic value and the value at the lowest volatility (a deep
    /// in-the-money option marked at, or within a rounding of, intrinsic) returns the lowest volatility,
    /// 0.005: such a mark carries no information about volatility, and refusing it would refuse a position
    /// whose value is known. "Within a rounding" is 1e-9 of the larger of forward and strike below
    /// intrinsic. Anything further below intrinsic is an arbitrage and an error.
    public static func solve(
        price: Double, kind: OptionKind, forward: Double, strike: Double, timeToExpiryYears: Double,
        discountFactor: Double = 1
    ) throws(ImpliedVolatilityError) -> Double {
        let lower = discountFactor * max(kind == .call ? forward - strike : strike - forward, 0)
        let upper = discountFactor * (kind == .call ? forward : strike)
        let rounding = 1e-9 * max(forward, strike)
        guard price.isFinite, price >= lower - rounding, price <= upper, timeToExpiryYears > 0 else {
            throw .outsideNoArbitrageBounds(price: price, lower: lower, upper: upper)
        }
        func value(_ sigma: Double) -> Double {
            Black76.price(
                kind, forward: forward, strike: strike, volatility: sigma, timeToExpiryYears: timeToExpiryYears,
                discountFactor: discountFactor)
        }
        var low = minimumVolatility
        var high = maximumVolatility
        let priceLow = value(low)
        let priceHigh = value(high)
        if price <= priceLow { return low }
        guard price <= priceHigh else {
            throw .outsideVolatilityRange(price: price, priceAtMinimum: priceLow, priceAtMaximum: priceHigh)
        }
        if price == priceHigh { return high }
        // Start from the Brenner–Subrahmanyam at-the-money approximation, clamped into the bracket.
        let sqrtT = timeToExpiryYears.squareRoot()
        var sigma = min(max((2 * Double.pi).squareRoot() * price / (discountFactor * forward * sqrtT), 0.05), 3)
        let tolerance = 1e-14 * max(price, 1e-300)
        for _ in 0..<200 {
            let option = Black76(
                kind, forward: forward, strike: strike, volatility: sigma,
                timeToExpiryYears: timeToExpiryYears, discountFactor: discountFactor)
            let difference = option.price - price
            if abs(difference) <= tolerance { return sigma }
            if difference > 0 { high = sigma } else { low = sigma }
            if high - low <= 1e-15 * high { return sigma }
            var next = sigma - difference / option.vega
            if !(option.vega > 0) || !next.isFinite || next <= low || next >= high {
                next = 0.5 * (low + high)
            }
            sigma = next
        }
        return sigma
    }
}
