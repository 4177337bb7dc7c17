/// The cash effect of one trade on an account (risk arithmetic; a server books it in exact decimals).
public struct TradeFill: Sendable, Equatable {
    public var instrumentID: String
    /// Signed contracts traded (buy > 0, sell < 0).
    public var sizeContracts: Double
    /// Fill price in the instrument's quote (coins for options).
    public var price: Double
    /// Realised P&L of the part that closed a position, in the settlement currency.
    public var realizedPnL: Double
    /// Option premium paid (−) or received (+), in the settlement currency.
    public var premium: Double
    /// Fee charged, in the settlement currency (≥ 0), and its USD value.
    public var fee: Double
    public var feeUSD: Double
    public var settleCurrency: String
    /// The net change of the settlement currency's cash balance: realised P&L + premium − fee.
    public var cashChange: Double { realizedPnL + premium - fee }
}

extension Portfolio {
    /// One line per instrument (net position mode), merged so that equity is unchanged.
    ///
    /// Lines of one instrument merge into their net size with the entry price that keeps their combined
    /// unrealised P&L: `Σ size·avg / Σ size` for linear contracts and options, the harmonic equivalent for
    /// inverse ones. Lines that net to zero leave their locked-in P&L in the settlement currency's cash.
    public func nettedByInstrument() -> Portfolio {
        var grouped: [String: [Position]] = [:]
        for position in positions { grouped[position.instrument.id.rawValue, default: []].append(position) }
        var result = self
        result.positions = []
        for id in grouped.keys.sorted() {
            let lines = grouped[id] ?? []
            guard let first = lines.first else { continue }
            if lines.count == 1 {
                result.positions.append(first)
                continue
            }
            let instrument = first.instrument
            var net = lines.reduce(0) { $0 + $1.sizeContracts }
            // Lines that cancel up to the rounding of their sum (a + b − a − b) are closed.
            if abs(net) < 1e-12 * lines.reduce(0) { max($0, abs($1.sizeContracts)) } { net = 0 }
            let inverse = instrument.kind != .option && instrument.margining == .inverse
            if net == 0 {
                if instrument.kind != .option {
                    // Linear: Σ s(m − a) = −Σ s·a; inverse: Σ s(1/a − 1/m) = Σ s/a (in coins).
                    let locked = inverse
                        ? lines.reduce(0) { $0 + $1.sizeContracts / $1.averagePrice } * instrument.contractValue
                        : -lines.reduce(0) { $0 + $1.sizeContracts * $1.averagePrice } * instrument.contractValue
                    result.cashBalances[instrument.settleCurrency, default: 0] += locked
                }
                continue
            }
            let average = inverse
                ? net / lines.reduce(0) { $0 + $1.sizeContracts / $1.averagePrice }
                : lines.reduce(0) { $0 + $1.sizeContracts * $1.averagePrice } / net
            var merged = first
            merged.sizeContracts = net
            merged.averagePrice = average > 0 ? average : lines.map(\.averagePrice).max() ?? first.averagePrice
            result.positions.append(merged)
        }
        return result
    }

    /// The portfolio after trading `sizeContracts` (signed) of `instrument` at `price`, with a fee of
    /// `feeRate × notional`, and the fill that describes the cash effect.
    ///
    /// Net mode: a trade against the position first closes it (realising P&L at `price`), any remainder
    /// opens the other way at `price`; a trade with the position adds to it at a size-weighted entry price.
    /// Options move premium (`size·ctVal·ctMult·price` coins) instead of realising P&L.
    public func trading(
        _ instrument: Instrument, sizeContracts trade: Double, price: Double, feeRate: Double, market: InstrumentMarket,
        settleIndexUSD: Double
    ) -> (Portfolio, TradeFill) {
        var result = self
        let id = instrument.id.rawValue
        let index = result.positions.firstIndex { $0.instrument.id.rawValue == id }
        let current = index.map { result.positions[$0] }
        let size = current?.sizeContracts ?? 0
        let average = current?.averagePrice ?? price
        let inverse = instrument.kind != .option && instrument.margining == .inverse
        var realized = 0.0
        var premium = 0.0
        var newSize = size + trade
        var newAverage = average
        if instrument.kind == .option {
            premium = -trade * instrument.coinsPerContract * price
            if size * trade >= 0 || size == 0 {
                newAverage = newSize != 0 ? (size * average + trade * price) / newSize : price
            } else if abs(trade) > abs(size) {
                newAverage = price
            }
        } else if size == 0 || size * trade > 0 {
            newAverage = inverse ? newSize / (size / average + trade / price) : (size * average + trade * price) / newSize
        } else {
            let closing = abs(trade) <= abs(size) ? trade : -size
            realized = inverse
                ? -closing * instrument.contractValue * (1 / average - 1 / price)
                : -closing * instrument.contractValue * (price - average)
            if abs(trade) > abs(size) { newAverage = price }
        }
        if abs(newSize) < 1e-12 * max(abs(size), abs(trade)) { newSize = 0 }
        let feeUSD = feeRate * abs(trade) * market.notionalUSDPerContract
        let fee = feeUSD / settleIndexUSD
        let settle = instrument.settleCurrency
        let fill = TradeFill(
            instrumentID: id, sizeContracts: trade, price: price, realizedPnL: realized, premium: premium, fee: fee,
            feeUSD: feeUSD, settleCurrency: settle)
        result.cashBalances[settle, default: 0] += fill.cashChange
        if let index {
            if newSize == 0 {
                result.positions.remove(at: index)
            } else {
                result.positions[index].sizeContracts = newSize
                result.positions[index].averagePrice = newAverage
            }
        } else if newSize != 0 {
            result.positions.append(Position(instrument: instrument, sizeContracts: newSize, averagePrice: newAverage, source: "liquidation"))
        }
        return (result, fill)
    }
}
