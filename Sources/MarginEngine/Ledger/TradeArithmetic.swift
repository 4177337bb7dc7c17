/// The one crossing between ledger decimals and risk `Double`s (`Numerics.md`).
///
/// - Ledger → risk: ``risk(_:)``, the nearest `Double` to the exact decimal.
/// - Risk → ledger: ``ledger(_:)`` writes a `Double` as its shortest decimal (the digits `DecimalText`
///   prints, at most 17 significant), exactly; ``contracts(_:lotSize:)`` rounds a size half-even to whole
///   lots first, so a risk-side size such as `3 × 0.1` books as `0.3`. Amounts are rounded to their
///   currency's ledger scale (``LedgerAmount``) only where cash moves.
public enum LedgerBoundary {
    /// The risk value of a ledger amount.
    public static func risk(_ value: ExactDecimal) -> Double { value.doubleValue }

    /// The ledger value of a risk-side number (a price or rate): its shortest decimal, exactly.
    public static func ledger(_ value: Double) -> ExactDecimal { ExactDecimal(value) }

    /// A risk-side size in contracts as whole lots (half-even), exactly.
    public static func contracts(_ value: Double, lotSize: Double) -> ExactDecimal {
        let lot = ExactDecimal(lotSize)
        return ExactDecimal((value / lotSize).rounded(.toNearestOrEven)).multiplied(by: lot)
    }
}

/// A net position held exactly: signed contracts and the entry price in the instrument's quote.
public struct LedgerPosition: Sendable, Equatable {
    public var sizeContracts: ExactDecimal
    public var averagePrice: ExactDecimal

    public init(sizeContracts: ExactDecimal, averagePrice: ExactDecimal) {
        self.sizeContracts = sizeContracts
        self.averagePrice = averagePrice
    }
}

/// One fill of a derivative, exactly as the ledger books it.
public struct LedgerFill: Sendable, Equatable {
    public var instrumentID: String
    /// Signed contracts (buy > 0).
    public var sizeContracts: ExactDecimal
    /// Fill price in the instrument's quote (coins for options).
    public var price: ExactDecimal
    /// Realised P&L of the part that closed the position, in the settlement currency (unrounded).
    public var realizedPnL: ExactDecimal
    /// Option premium received (+) or paid (−), in the settlement currency (unrounded).
    public var premium: ExactDecimal
    /// The fee, ≥ 0, rounded to the settlement currency's ledger scale.
    public var fee: ExactDecimal
    public var settleCurrency: String

    /// The cash the fill moves, rounded to the settlement currency's ledger scale (what one bill posts).
    public var cashChange: ExactDecimal { LedgerAmount(settleCurrency, realizedPnL + premium - fee).amount }
}

/// The trade arithmetic of the ledger (docs/methodology/03-account.md §1, 06-sandbox-api.md §4), in exact decimals: the
/// one function that the sandbox's order fills, settlements and liquidations and the liquidation planner all use.
public enum TradeArithmetic {
    /// A fill of `sizeContracts` (signed) of a derivative at `price` against the net position `held`.
    ///
    /// - Netting: a trade with the position (or opening one) adds at the size-weighted entry price (the
    ///   harmonic one for inverse contracts); a trade against it first closes it, realising
    ///   `−closed·ctVal·(price − avg)` (linear) or `−closed·ctVal·(1/avg − 1/price)` coins (inverse); the
    ///   remainder opens the other way at `price`. Options move premium `−size·ctVal·ctMult·price` instead
    ///   of realising P&L; their entry price follows the same netting.
    /// - Fee: `feeRate ×` the fill's notional in the settlement currency — linear `|size|·ctVal·price`,
    ///   inverse `|size|·ctVal/price`, options `|size|·ctVal·ctMult` (underlying coins), capped at
    ///   `premiumCap × premium` when a cap is given — rounded half-even to the ledger scale.
    /// - Returns: the position after the fill (nil when flat) and the fill.
    public static func fill(
        _ instrument: Instrument, held: LedgerPosition?, sizeContracts signed: ExactDecimal, price: ExactDecimal, feeRate: ExactDecimal,
        premiumCap: ExactDecimal? = nil
    ) -> (position: LedgerPosition?, fill: LedgerFill) {
        let size = signed.magnitude
        let contractValue = ExactDecimal(instrument.contractValue)
        let settle = instrument.settleCurrency
        let fee: ExactDecimal
        switch (instrument.kind, instrument.margining) {
        case (.option, _):
            let coins = size.multiplied(by: ExactDecimal(instrument.coinsPerContract))
            let uncapped = coins.multiplied(by: feeRate)
            fee = premiumCap.map { min(uncapped, coins.multiplied(by: price).multiplied(by: $0)) } ?? uncapped
        case (_, .inverse?):
            fee = size.multiplied(by: contractValue).divided(by: price).multiplied(by: feeRate)
        default:
            fee = size.multiplied(by: contractValue).multiplied(by: price).multiplied(by: feeRate)
        }
        let position = held?.sizeContracts ?? .zero
        let average = held?.averagePrice ?? price
        var realized = ExactDecimal.zero
        var premium = ExactDecimal.zero
        let newPosition = position + signed
        var newAverage = average
        let inverse = instrument.kind != .option && instrument.margining == .inverse
        if instrument.kind == .option {
            premium = -signed.multiplied(by: ExactDecimal(instrument.coinsPerContract)).multiplied(by: price)
        }
        if position.isZero || position.isNegative == signed.isNegative {
            if inverse {
                newAverage = newPosition.divided(by: position.divided(by: average) + signed.divided(by: price))
            } else {
                newAverage = (position.multiplied(by: average) + signed.multiplied(by: price)).divided(by: newPosition)
            }
        } else {
            let closing = size <= position.magnitude ? signed : -position
            if instrument.kind != .option {
                realized =
                    inverse
                    ? -(closing.multiplied(by: contractValue).multiplied(
                        by: ExactDecimal(1).divided(by: average) - ExactDecimal(1).divided(by: price)))
                    : -(closing.multiplied(by: contractValue).multiplied(by: price - average))
            }
            if size > position.magnitude { newAverage = price }
        }
        let fill = LedgerFill(
            instrumentID: instrument.id.rawValue, sizeContracts: signed, price: price, realizedPnL: realized, premium: premium,
            fee: LedgerAmount(settle, fee).amount, settleCurrency: settle)
        return (newPosition.isZero ? nil : LedgerPosition(sizeContracts: newPosition, averagePrice: newAverage), fill)
    }

    /// A spot fill of `sizeCoins` (signed, buy > 0) at `price` (quote per coin): what the base and quote
    /// balances change by and the fee, charged in the currency received (`feeRate ×` the coins bought, or
    /// `×` the quote received), rounded to its ledger scale.
    public static func spotFill(
        _ instrument: Instrument, sizeCoins signed: ExactDecimal, price: ExactDecimal, feeRate: ExactDecimal
    ) -> (baseChange: ExactDecimal, quoteChange: ExactDecimal, fee: ExactDecimal, feeCurrency: String) {
        let size = signed.magnitude
        let quoteAmount = size.multiplied(by: price)
        if !signed.isNegative {
            let fee = LedgerAmount(instrument.underlying, size.multiplied(by: feeRate)).amount
            return (size - fee, -quoteAmount, fee, instrument.underlying)
        }
        let fee = LedgerAmount(instrument.quoteCurrency, quoteAmount.multiplied(by: feeRate)).amount
        return (-size, quoteAmount - fee, fee, instrument.quoteCurrency)
    }
}
