import MarginEngine
import MarginStore

// Orders and cancellations as the API hands them to the exchange, and the simulated book they meet.

/// An order request, already parsed into typed fields.
package struct OrderRequest: Sendable {
    package var instId: String
    package var tdMode: TradeMode
    package var side: OrderSide
    package var ordType: OrderType
    package var size: ExactDecimal
    package var price: ExactDecimal?
    package var tgtCcy: String
    package var clOrdId: String
    package var tag: String
    package var reduceOnly: Bool
}

/// One cancellation: the order's instrument and its ordId or clOrdId (ordId wins when both are given).
package struct CancelRequest: Sendable {
    package var instId: String
    package var ordId: String?
    package var clOrdId: String?

    package init(instId: String, ordId: String?, clOrdId: String?) {
        self.instId = instId
        self.ordId = ordId
        self.clOrdId = clOrdId
    }
}

/// The top of the simulated book of an instrument.
package struct BookTop: Sendable {
    package var bid: ExactDecimal
    package var ask: ExactDecimal
    package var mark: ExactDecimal
}

extension Exchange {
    /// The simulated top of book around the mark: `mark × (1 ∓ half-spread)`, bid rounded down and ask up
    /// to the tick. Spot uses the pair's index as its mark.
    func book(_ instrument: Instrument) throws -> BookTop {
        let resolved: InstrumentMarket
        do { resolved = try market.market(for: instrument, path: "instId") } catch { throw OKXError.engine(error) }
        let halfSpread = parameters.halfSpread[parameters.tier(of: instrument.underlying)] ?? 0
        let tick = ExactDecimal(instrument.tickSize)
        let mark = ExactDecimal(max(resolved.markPrice, instrument.tickSize))
        func onTick(_ value: Double, up: Bool) -> ExactDecimal {
            let ticks = (value / instrument.tickSize).rounded(up ? .up : .down)
            return ExactDecimal(Swift.max(ticks, 1)).multiplied(by: tick)
        }
        return BookTop(
            bid: onTick(resolved.markPrice * (1 - halfSpread), up: false), ask: onTick(resolved.markPrice * (1 + halfSpread), up: true),
            mark: mark)
    }

    /// The live instrument with this id (listed and not expired at market time).
    func liveInstrument(_ id: String) throws -> Instrument {
        guard !id.isEmpty else { throw OKXError.empty("instId") }
        guard let instrument = catalog.instrument(id) else { throw OKXError.unknownInstrument(id) }
        if let expiry = instrument.expiry, expiry <= market.valuationTime {
            throw OKXError(.unknownInstrument, "Instrument ID does not exist: \(id) expired at \(expiry.iso8601)")
        }
        return instrument
    }
}
