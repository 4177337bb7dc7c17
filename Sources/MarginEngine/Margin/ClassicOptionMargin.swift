/// OKX's coin-margined option margin of the classic (multi-currency) mode, per coin of underlying
/// (docs/methodology/03-account.md §6, OKX Option Margin page). Multiply by `|pos|·ctVal·ctMult` for a position.
///
/// ```
/// IMR (short)       = max(a, b − OTM/F)·factor + mark
/// MMR (short call)  = c·factor + mark
/// MMR (short put)   = max(c, c·mark)·factor + mark
/// ```
/// `OTM` is the out-of-the-money amount against the same-expiry forward `F` (USD), `mark` the option's
/// mark in coins per coin. Long options need no margin (their premium is already paid).
public enum ClassicOptionMargin {
    /// The out-of-the-money amount in USD: `max(K − F, 0)` for a call, `max(F − K, 0)` for a put.
    public static func outOfTheMoneyUSD(_ kind: OptionKind, strikeUSD: Double, forwardUSD: Double) -> Double {
        max(kind == .call ? strikeUSD - forwardUSD : forwardUSD - strikeUSD, 0)
    }

    /// Initial margin in coins per coin of underlying for a short option (0 for a long one).
    public static func initialMarginCoins(
        _ kind: OptionKind, isShort: Bool, strikeUSD: Double, forwardUSD: Double, markCoin: Double,
        coefficients: ClassicOptionCoefficients, marginFactor: Double
    ) -> Double {
        guard isShort else { return 0 }
        let otm = outOfTheMoneyUSD(kind, strikeUSD: strikeUSD, forwardUSD: forwardUSD)
        return max(coefficients.a, coefficients.b - otm / forwardUSD) * marginFactor + markCoin
    }

    /// Maintenance margin in coins per coin of underlying for a short option (0 for a long one).
    public static func maintenanceMarginCoins(
        _ kind: OptionKind, isShort: Bool, markCoin: Double, coefficients: ClassicOptionCoefficients, marginFactor: Double
    ) -> Double {
        guard isShort else { return 0 }
        switch kind {
        case .call: return coefficients.c * marginFactor + markCoin
        case .put: return max(coefficients.c, coefficients.c * markCoin) * marginFactor + markCoin
        }
    }
}
