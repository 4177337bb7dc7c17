/// How far a coin's price may move before the account reaches liquidation (the Position Builder's
/// `liqMoves`, docs/methodology/05-position-builder.md).
public enum LiquidationDistance {
    /// The smallest moves of `coin`'s index, down and up, at which the whole account's margin ratio reaches
    /// the liquidation trigger, with volatility unchanged and every other coin held; nil when none within
    /// ±99 %. Both are 0 when the account is already at or below the trigger.
    ///
    /// Scans in steps of 2 % and refines the first crossing by bisection to 1e-4 (a breach window narrower
    /// than 2 % between two safe points can be missed).
    /// - Complexity: at most about 115 margin computations per coin, each repricing only that coin's
    ///   instruments.
    public static func moves(
        _ portfolio: Portfolio, coin: String, market: MarketSnapshot, parameters: MarginParameters
    ) throws(EngineError) -> (down: Double?, up: Double?) {
        let trigger = parameters.liquidationTriggerRatio
        let shock = try PortfolioShock(portfolio, market: market, parameters: parameters)
        func breached(_ move: Double) throws(EngineError) -> Bool {
            (try shock.result(move: move, onlyCoin: coin).marginRatio ?? .infinity) <= trigger
        }
        if try breached(0) { return (0, 0) }
        func search(_ direction: Double) throws(EngineError) -> Double? {
            var safe = 0.0
            for step in 1...50 {
                let move = direction * min(Double(step) * 2, 99) / 100
                if try breached(move) {
                    var low = safe
                    var high = move
                    while abs(high - low) > 1e-4 {
                        let middle = (low + high) / 2
                        if try breached(middle) { high = middle } else { low = middle }
                    }
                    return (high * 10_000).rounded(direction < 0 ? .down : .up) / 10_000
                }
                safe = move
            }
            return nil
        }
        return (try search(-1), try search(1))
    }
}
