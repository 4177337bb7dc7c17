import RealModule

/// Raw SVI volatility parameters of one expiry, as Derive's vol feed holds them (lyra-utils `SVI.sol`).
///
/// ```
/// B = 4·√(a + b·σ)                          bound on log-moneyness
/// k = clamp(ln(K / F), −B, B)               F = the SVI's own forward
/// w = a + b·(√((k − m)² + σ²) + ρ·(k − m))  total variance, capped at 144
/// vol = √(w / τ)
/// ```
/// `τ` is the SVI's own year fraction (not recomputed from the expiry), as Derive stores it.
public struct DeriveSVI: Sendable, Equatable {
    public var a: Double
    public var b: Double
    public var rho: Double
    public var m: Double
    public var sigma: Double
    /// The forward the SVI was fitted at, USD per coin.
    public var forwardUSD: Double
    /// The SVI's year fraction τ.
    public var timeToExpiryYears: Double

    public init(a: Double, b: Double, rho: Double, m: Double, sigma: Double, forwardUSD: Double, timeToExpiryYears: Double) {
        self.a = a
        self.b = b
        self.rho = rho
        self.m = m
        self.sigma = sigma
        self.forwardUSD = forwardUSD
        self.timeToExpiryYears = timeToExpiryYears
    }

    /// The largest total variance `SVI.getVol` returns (`MAX_TOTAL_VAR`).
    public static let maximumTotalVariance = 144.0
    /// `TOTAL_VOL_SCALAR`: the log-moneyness bound is this × √(a + b·σ).
    public static let logMoneynessBoundScale = 4.0

    /// The volatility (fraction) at `strike` (USD per coin); 0 at a zero strike, as `SVI.getVol`.
    ///
    /// Throws where `SVI.getVol` reverts (no forward, a + b·σ < 0, negative total variance, τ ≤ 0), naming
    /// `path`.
    public func volatility(strike: Double, path: String) throws(EngineError) -> Double {
        if strike == 0 { return 0 }
        guard forwardUSD > 0 else {
            throw .invalidField(
                path: "\(path).forward", value: DecimalText.format(forwardUSD), reason: "must be greater than 0 (SVI_NoForwardPrice)")
        }
        let varianceFloor = a + b * sigma
        guard varianceFloor >= 0 else {
            throw .invalidField(
                path: path, value: DecimalText.format(varianceFloor), reason: "a + b·σ must not be negative (SVI: value must be positive)")
        }
        let bound = Self.logMoneynessBoundScale * varianceFloor.squareRoot()
        let moneyness = strike / forwardUSD
        // Derive works in 18-decimal fixed point: a ratio below 1e-18 is zero and takes the lower bound.
        let k = moneyness < 1e-18 ? -bound : min(max(Double.log(moneyness), -bound), bound)
        let shifted = k - m
        var totalVariance = a + b * ((shifted * shifted + sigma * sigma).squareRoot() + rho * shifted)
        guard totalVariance >= 0 else {
            throw .invalidField(
                path: path, value: DecimalText.format(totalVariance),
                reason: "gives a negative total variance at strike \(DecimalText.format(strike)) (SVI_InvalidParameters)")
        }
        totalVariance = min(totalVariance, Self.maximumTotalVariance)
        guard timeToExpiryYears > 0 else {
            throw .invalidField(path: "\(path).tau", value: DecimalText.format(timeToExpiryYears), reason: "must be greater than 0")
        }
        return (totalVariance / timeToExpiryYears).squareRoot()
    }
}
