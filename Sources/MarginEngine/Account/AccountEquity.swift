/// A position valued at its market, independent of the margin mode (docs/methodology/03-account.md §1, §3).
public struct PositionValuation: Sendable {
    /// Unrealised P&L in the settlement currency: linear `pos·ctVal·(mark − avg)`, inverse
    /// `pos·ctVal·(1/avg − 1/mark)` coins, option `pos·ctVal·ctMult·(markPx − avgPx)` coins.
    public var floatingPnL: Double
    /// What the position adds to its settlement currency's equity: the unrealised P&L, or for an option
    /// its whole market value `pos·ctVal·ctMult·markPx` (its premium was paid out of the balance).
    public var equityContribution: Double
    /// Gross notional in USD: linear `|pos|·ctVal·markPx·stable-USD`, inverse `|pos|·ctVal`, option
    /// `|pos|·ctVal·ctMult·index`.
    public var notionalUSD: Double

    public init(_ position: Position, market: InstrumentMarket) {
        let instrument = position.instrument
        let size = position.sizeContracts
        switch (instrument.kind, instrument.margining) {
        case (.option, _):
            floatingPnL = size * instrument.coinsPerContract * (market.markPrice - position.averagePrice)
            equityContribution = size * instrument.coinsPerContract * market.markPrice
        case (_, .inverse?):
            floatingPnL = size * instrument.contractValue * (1 / position.averagePrice - 1 / market.markPrice)
            equityContribution = floatingPnL
        default:
            floatingPnL = size * instrument.contractValue * (market.markPrice - position.averagePrice)
            equityContribution = floatingPnL
        }
        notionalUSD = abs(size) * market.notionalUSDPerContract
    }
}

extension InstrumentMarket {
    /// Gross notional of one contract in USD (docs/methodology/03-account.md §3).
    public var notionalUSDPerContract: Double {
        switch (instrument.kind, instrument.margining) {
        case (.option, _): instrument.coinsPerContract * indexUSD
        case (_, .inverse?): instrument.contractValue
        default: abs(instrument.contractValue * markPrice * quoteUSD)
        }
    }
}

/// Equity, collateral discounts and borrowing by currency (docs/methodology/03-account.md §1, §2, §4) — shared by every
/// mode.
public enum AccountEquity {
    /// What positions add to each settlement currency's equity (unrealised P&L of linear and inverse
    /// contracts, the market value of options), in that currency's units: `eq − cashBal` per currency.
    public static func positionEquity(_ positions: [Position], market: MarketSnapshot) throws(EngineError) -> [String: Double] {
        var equity: [String: Double] = [:]
        for position in positions {
            let valuation = PositionValuation(position, market: try market.market(for: position.instrument, path: position.source))
            equity[position.instrument.settleCurrency, default: 0] += valuation.equityContribution
        }
        return equity
    }

    /// One result per currency held or settled, sorted by code.
    /// - Parameters:
    ///   - contributions: each position's settlement currency and equity contribution.
    ///   - spotInUse: coins used as spot in use, by coin (portfolio margin only).
    public static func currencies(
        cashBalances: [String: Double], contributions: [(currency: String, amount: Double)], spotInUse: [String: Double],
        market: MarketSnapshot, parameters: MarginParameters
    ) throws(EngineError) -> [CurrencyResult] {
        var equity = cashBalances
        for contribution in contributions { equity[contribution.currency, default: 0] += contribution.amount }
        let borrowing = BorrowingSchedule(parameters)
        var results: [CurrencyResult] = []
        for currency in equity.keys.sorted() {
            let amount = equity[currency] ?? 0
            let indexUSD = try market.indexUSD(currency)
            let valuation = CurrencyValuation(
                amount: amount, indexUSD: indexUSD, discountTiers: parameters.collateralTiers[currency] ?? [], borrowing: borrowing)
            let spot = spotInUse[currency] ?? 0
            results.append(
                CurrencyResult(
                    currency: currency, cashBalance: cashBalances[currency] ?? 0, equity: amount, indexUSD: indexUSD,
                    equityUSD: valuation.equityUSD, discountedEquityUSD: valuation.discountedEquityUSD,
                    liabilityUSD: valuation.liabilityUSD,
                    borrowMmrUSD: valuation.borrowMmrUSD, borrowImrUSD: valuation.borrowImrUSD, spotInUse: spot,
                    availableEquity: amount - spot))
        }
        return results
    }
}
