/// The cash effect of one trade on an account: the ledger's fill (``TradeArithmetic``) with its risk values.
public struct TradeFill: Sendable, Equatable {
    /// The fill exactly as the ledger books it.
    public var ledger: LedgerFill
    /// Its fee in USD (at the settlement currency's index).
    public var feeUSD: Double

    public var instrumentID: String { ledger.instrumentID }
    /// Signed contracts traded (buy > 0).
    public var sizeContracts: Double { LedgerBoundary.risk(ledger.sizeContracts) }
    /// Fill price in the instrument's quote (coins for options).
    public var price: Double { LedgerBoundary.risk(ledger.price) }
    /// Realised P&L of the part that closed a position, in the settlement currency.
    public var realizedPnL: Double { LedgerBoundary.risk(ledger.realizedPnL) }
    /// Option premium paid (−) or received (+), in the settlement currency.
    public var premium: Double { LedgerBoundary.risk(ledger.premium) }
    /// Fee charged, in the settlement currency (≥ 0), at its ledger scale.
    public var fee: Double { LedgerBoundary.risk(ledger.fee) }
    public var settleCurrency: String { ledger.settleCurrency }
    /// The net change of the settlement currency's cash balance: realised P&L + premium − fee, at the ledger scale.
    public var cashChange: Double { LedgerBoundary.risk(ledger.cashChange) }
}

extension Portfolio {
    /// One line per instrument (net position mode), merged so that equity is unchanged.
    ///
    /// Lines of one instrument merge into their net size with the entry price that keeps their combined
    /// unrealised P&L: `Σ size·avg / Σ size` for linear contracts and options, the harmonic equivalent for
    /// inverse ones. Lines that net to zero leave their locked-in P&L in the settlement currency's cash.
    public func nettedByInstrument() -> Portfolio {
        // Already one line per instrument in id order (a ledger's account): the loop below would return it unchanged.
        if zip(positions, positions.dropFirst()).allSatisfy({ $0.instrument.id.rawValue < $1.instrument.id.rawValue }) { return self }
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
                    let locked =
                        inverse
                        ? lines.reduce(0) { $0 + $1.sizeContracts / $1.averagePrice } * instrument.contractValue
                        : -lines.reduce(0) { $0 + $1.sizeContracts * $1.averagePrice } * instrument.contractValue
                    result.cashBalances[instrument.settleCurrency, default: 0] += locked
                }
                continue
            }
            let average =
                inverse
                ? net / lines.reduce(0) { $0 + $1.sizeContracts / $1.averagePrice }
                : lines.reduce(0) { $0 + $1.sizeContracts * $1.averagePrice } / net
            var merged = first
            merged.sizeContracts = net
            merged.averagePrice = average > 0 ? average : lines.map(\.averagePrice).max() ?? first.averagePrice
            merged.ledger = nil
            result.positions.append(merged)
        }
        return result
    }

    /// The portfolio after trading `sizeContracts` (signed) of `instrument` at `price`, with a fee of
    /// `feeRate ×` the fill's notional, and the fill that describes the cash effect.
    ///
    /// The arithmetic is the ledger's (``TradeArithmetic/fill(_:held:sizeContracts:price:feeRate:premiumCap:)``),
    /// on exact inputs taken at ``LedgerBoundary``: the size in whole lots (the whole position when the
    /// trade closes it), the price as its shortest decimal, the held position as the ledger holds it when
    /// known. A sandbox booking the same fill therefore books the same digits.
    public func trading(
        _ instrument: Instrument, sizeContracts trade: Double, price: Double, feeRate: Double, market: InstrumentMarket,
        settleIndexUSD: Double
    ) -> (Portfolio, TradeFill) {
        trading(
            instrument, sizeContracts: trade, price: LedgerBoundary.ledger(price), feeRate: ExactDecimal(feeRate),
            settleIndexUSD: settleIndexUSD)
    }

    /// ``trading(_:sizeContracts:price:feeRate:market:settleIndexUSD:)`` with the price and fee rate already
    /// taken at ``LedgerBoundary`` (the planner converts them once per instrument, not once per candidate size).
    func trading(
        _ instrument: Instrument, sizeContracts trade: Double, price: ExactDecimal, feeRate: ExactDecimal, settleIndexUSD: Double
    ) -> (Portfolio, TradeFill) {
        var result = self
        let id = instrument.id.rawValue
        let index = result.positions.firstIndex { $0.instrument.id.rawValue == id }
        let current = index.map { result.positions[$0] }
        let held = current.map {
            $0.ledger ?? LedgerPosition(sizeContracts: ExactDecimal($0.sizeContracts), averagePrice: ExactDecimal($0.averagePrice))
        }
        let heldSize = current?.sizeContracts ?? 0
        let closesAll =
            heldSize != 0 && heldSize * trade < 0 && abs(trade) >= abs(heldSize) * (1 - 1e-12) && abs(trade) <= abs(heldSize) * (1 + 1e-12)
        let exactSize = closesAll ? -(held?.sizeContracts ?? .zero) : LedgerBoundary.contracts(trade, lotSize: instrument.lotSize)
        let (position, fill) = TradeArithmetic.fill(instrument, held: held, sizeContracts: exactSize, price: price, feeRate: feeRate)
        let traded = TradeFill(ledger: fill, feeUSD: LedgerBoundary.risk(fill.fee) * settleIndexUSD)
        result.cashBalances[fill.settleCurrency, default: 0] += traded.cashChange
        if let position {
            let updated = Position(
                instrument: instrument, ledger: position, source: current?.source ?? "liquidation", leverage: current?.leverage)
            if let index { result.positions[index] = updated } else { result.positions.append(updated) }
        } else if let index {
            result.positions.remove(at: index)
        }
        return (result, traded)
    }
}
