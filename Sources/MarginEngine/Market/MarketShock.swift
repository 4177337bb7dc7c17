import RealModule

extension MarketSnapshot {
    /// The snapshot after every coin index moves by `spotMove` (a fraction, > −1), the way the Position
    /// Builder's `idxVol` and graph apply a shock (spec 05) and MR1 moves a unit (spec 01 §1.5).
    ///
    /// - Coin indices (`BTC-USD`, `BTC-USDT`) become `S(1 + x)`; stablecoin indices do not move.
    /// - Perpetual and future marks, and option forwards, move by `x ×` their quote's index (basis held);
    ///   a move that would leave a price at or below zero moves it proportionally instead.
    /// - Volatilities are unchanged. An option's coin mark keeps its offset from the model:
    ///   `markPx' = (markPx·S + V(F') − V(F)) / S'`; if that is not positive the mark is left to the model.
    /// - Complexity: O(marks), two Black-76 evaluations per option.
    public func shocked(by spotMove: Double) throws(EngineError) -> MarketSnapshot {
        guard spotMove.isFinite, spotMove > -1 else {
            throw .invalidField(path: "idxVol", value: DecimalText.formatLenient(spotMove), reason: "must be a finite move above -1")
        }
        if spotMove == 0 { return self }
        func isMoving(_ currency: String) -> Bool { currency != "USD" && !Self.stablecoins.contains(currency) }
        var newIndices: [String: Double] = [:]
        for (pair, price) in indices {
            let parts = pair.split(separator: "-").map(String.init)
            let moves = parts.count == 2 && isMoving(parts[0]) && !isMoving(parts[1])
            newIndices[pair] = moves ? price * (1 + spotMove) : price
        }
        func shift(_ price: Double, by quoteIndex: Double) -> Double {
            let moved = price + spotMove * quoteIndex
            return moved > 0 ? moved : price * (1 + spotMove)
        }
        var newMarks: [String: MarkQuote] = [:]
        for id in marks.keys.sorted() {
            guard let quote = marks[id], let instrumentID = InstrumentID(id) else { continue }
            let coin = instrumentID.baseCurrency
            switch instrumentID.kind {
            case .spot:
                continue
            case .perpetual, .future:
                let quoteIndex = try index(base: coin, quote: instrumentID.quoteCurrency)
                newMarks[id] = MarkQuote(markPrice: quote.markPrice.map { shift($0, by: quoteIndex) })
            case .option:
                guard let strike = instrumentID.strikeUSD, let kind = instrumentID.optionKind, let expiry = instrumentID.expiry else { continue }
                let instrument = Instrument(
                    id: instrumentID, contractValue: 1, contractMultiplier: 1, settleCurrency: coin, tickSize: 1, lotSize: 1,
                    minimumSize: 1)
                let resolved = try market(for: instrument, path: "market.marks")
                guard let option = resolved.option else { continue }
                let indexUSD = resolved.indexUSD
                let forward = shift(option.forwardUSD, by: indexUSD)
                let years = valuationTime.years(until: expiry)
                let discount = option.discountFactor
                let before = Black76.price(kind, forward: option.forwardUSD, strike: strike, volatility: option.volatility,
                    timeToExpiryYears: years, discountFactor: discount)
                let after = Black76.price(kind, forward: forward, strike: strike, volatility: option.volatility,
                    timeToExpiryYears: years, discountFactor: discount)
                let valueUSD = resolved.markPrice * indexUSD + after - before
                newMarks[id] = MarkQuote(
                    markPrice: valueUSD > 0 ? valueUSD / (indexUSD * (1 + spotMove)) : nil,
                    markVolatility: option.volatility, forwardUSD: forward)
            }
        }
        return try MarketSnapshot(
            valuationTime: valuationTime, indices: newIndices, usdRate: usdRate, marks: newMarks,
            source: source, representative: representative)
    }
}
