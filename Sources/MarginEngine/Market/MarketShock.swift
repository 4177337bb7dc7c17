import RealModule

extension MarketSnapshot {
    /// The snapshot after every coin index moves by `spotMove` (a fraction, > −1), the way the Position
    /// Builder's `idxVol` and graph apply a shock (docs/methodology/05-position-builder.md) and MR1 moves a unit
    /// (docs/methodology/01-instruments-market.md §1.5).
    ///
    /// - Coin indices (`BTC-USD`, `BTC-USDT`) become `S(1 + x)`; stablecoin indices do not move.
    /// - Perpetual and future marks, and option forwards, move by `x ×` their quote's index (basis held);
    ///   a move that would leave a price at or below zero moves it proportionally instead.
    /// - Volatilities are unchanged. An option's coin mark keeps its offset from the model:
    ///   `markPx' = (markPx·S + V(F') − V(F)) / S'`; if that is not positive the model value is used.
    /// - With `coin` set, only that coin's index and instruments move; everything else is held.
    /// - Complexity: O(marks), two Black-76 evaluations per moving option.
    public func shocked(by spotMove: Double, onlyCoin coin: String? = nil) throws(EngineError) -> MarketSnapshot {
        let newIndices = try shockedIndices(by: spotMove, onlyCoin: coin)
        if spotMove == 0 { return self }
        var newMarks: [String: MarkQuote] = [:]
        for id in marks.keys.sorted() {
            guard let quote = marks[id], let instrumentID = InstrumentID(id) else { continue }
            guard Self.moves(instrumentID.baseCurrency, onlyCoin: coin) else {
                newMarks[id] = quote
                continue
            }
            let instrument = Instrument(
                id: instrumentID, contractValue: 1, contractMultiplier: 1, settleCurrency: instrumentID.baseCurrency, tickSize: 1,
                lotSize: 1, minimumSize: 1)
            let moved = try market(for: instrument, path: "market.marks").shocked(by: spotMove)
            if let option = moved.option {
                newMarks[id] = MarkQuote(
                    markPrice: moved.markPrice > 0 ? moved.markPrice : nil, markVolatility: option.volatility,
                    forwardUSD: option.forwardUSD)
            } else {
                newMarks[id] = MarkQuote(markPrice: moved.markPrice)
            }
        }
        return try MarketSnapshot(
            valuationTime: valuationTime, indices: newIndices, usdRate: usdRate, marks: newMarks, source: source,
            representative: representative)
    }

    /// The index prices after the shock (see ``shocked(by:onlyCoin:)``).
    public func shockedIndices(by spotMove: Double, onlyCoin coin: String? = nil) throws(EngineError) -> [String: Double] {
        guard spotMove.isFinite, spotMove > -1 else {
            throw .invalidField(path: "idxVol", value: DecimalText.formatLenient(spotMove), reason: "must be a finite move above -1")
        }
        var newIndices: [String: Double] = [:]
        for (pair, price) in indices {
            let parts = pair.split(separator: "-").map(String.init)
            let moves = parts.count == 2 && Self.moves(parts[0], onlyCoin: coin) && !Self.moves(parts[1], onlyCoin: nil)
            newIndices[pair] = moves ? price * (1 + spotMove) : price
        }
        return newIndices
    }

    /// Whether a currency's index moves in a shock (coins do; USD and stablecoins do not).
    static func moves(_ currency: String, onlyCoin coin: String?) -> Bool {
        currency != "USD" && !stablecoins.contains(currency) && (coin == nil || currency == coin)
    }
}

extension InstrumentMarket {
    /// This instrument's market after its coin's index moves by `spotMove` (see
    /// ``MarketSnapshot/shocked(by:onlyCoin:)``): index × (1 + x), mark or forward + x × quote index.
    public func shocked(by spotMove: Double) -> InstrumentMarket {
        guard spotMove != 0 else { return self }
        func shift(_ price: Double, by quoteIndex: Double) -> Double {
            let moved = price + spotMove * quoteIndex
            return moved > 0 ? moved : price * (1 + spotMove)
        }
        let newIndexUSD = indexUSD * (1 + spotMove)
        let newQuoteIndex = quoteIndex * (1 + spotMove)
        guard let option, let strike = instrument.id.strikeUSD, let kind = instrument.id.optionKind else {
            let newMark = instrument.kind == .spot ? newQuoteIndex : shift(markPrice, by: quoteIndex)
            return InstrumentMarket(
                instrument: instrument, markPrice: newMark, indexUSD: newIndexUSD, quoteIndex: newQuoteIndex, quoteUSD: quoteUSD,
                timeToExpiryYears: timeToExpiryYears, option: nil)
        }
        var moved = option
        moved.forwardUSD = shift(option.forwardUSD, by: indexUSD)
        let discount = option.discountFactor
        let before = Black76.price(
            kind, forward: option.forwardUSD, strike: strike, volatility: option.volatility,
            timeToExpiryYears: option.timeToExpiryYears, discountFactor: discount)
        let after = Black76.price(
            kind, forward: moved.forwardUSD, strike: strike, volatility: option.volatility,
            timeToExpiryYears: option.timeToExpiryYears, discountFactor: discount)
        let valueUSD = markPrice * indexUSD + after - before
        return InstrumentMarket(
            instrument: instrument, markPrice: (valueUSD > 0 ? valueUSD : after) / newIndexUSD, indexUSD: newIndexUSD,
            quoteIndex: newQuoteIndex, quoteUSD: quoteUSD, timeToExpiryYears: timeToExpiryYears, option: moved)
    }
}

/// A portfolio revalued under index shocks without rebuilding the whole market: only its own instruments
/// are moved and repriced (the Position Builder's graph, `idxVol` and liquidation distances).
public struct PortfolioShock: Sendable {
    public let portfolio: Portfolio
    public let market: MarketSnapshot
    public let parameters: MarginParameters
    private let baseMarkets: [String: InstrumentMarket]
    private let baseRisks: [String: InstrumentRisk]

    public init(_ portfolio: Portfolio, market: MarketSnapshot, parameters: MarginParameters) throws(EngineError) {
        var markets: [String: InstrumentMarket] = [:]
        var risks: [String: InstrumentRisk] = [:]
        for position in portfolio.positions where markets[position.instrument.id.rawValue] == nil {
            let resolved = try market.market(for: position.instrument, path: position.source)
            markets[position.instrument.id.rawValue] = resolved
            risks[position.instrument.id.rawValue] = InstrumentRisk(resolved, parameters: parameters)
        }
        self.portfolio = portfolio
        self.market = market
        self.parameters = parameters
        baseMarkets = markets
        baseRisks = risks
    }

    /// The margin result after every coin (or only `coin`) moves by `spotMove`.
    /// - Complexity: 32 Black-76 evaluations per moving option instrument, plus the margin aggregation.
    public func result(move spotMove: Double, onlyCoin coin: String? = nil) throws(EngineError) -> PortfolioMarginResult {
        guard spotMove != 0 else { return try PortfolioMargin.compute(portfolio, market: market, parameters: parameters, risks: baseRisks) }
        let indices = try market.shockedIndices(by: spotMove, onlyCoin: coin)
        let shockedMarket = try MarketSnapshot(valuationTime: market.valuationTime, indices: indices, usdRate: market.usdRate, marks: [:])
        var risks = baseRisks
        for (id, base) in baseMarkets where MarketSnapshot.moves(base.instrument.underlying, onlyCoin: coin) {
            risks[id] = InstrumentRisk(base.shocked(by: spotMove), parameters: parameters)
        }
        return try PortfolioMargin.compute(portfolio, market: shockedMarket, parameters: parameters, risks: risks)
    }
}

extension MarketSnapshot {
    /// The snapshot at a later instant with prices unchanged: instruments expired by then are dropped, and
    /// options keep their volatility and forward while their coin mark is left to the model (it decays with
    /// time). Used by the sandbox's market clock.
    public func advanced(to time: UnixMillis) throws(EngineError) -> MarketSnapshot {
        guard time > valuationTime else { return self }
        var newMarks: [String: MarkQuote] = [:]
        for (id, quote) in marks {
            guard let instrumentID = InstrumentID(id) else { continue }
            if let expiry = instrumentID.expiry, expiry <= time { continue }
            if instrumentID.kind == .option {
                let instrument = Instrument(
                    id: instrumentID, contractValue: 1, contractMultiplier: 1, settleCurrency: instrumentID.baseCurrency, tickSize: 1,
                    lotSize: 1, minimumSize: 1)
                guard let option = try market(for: instrument, path: "market.marks").option else { continue }
                newMarks[id] = MarkQuote(markPrice: nil, markVolatility: option.volatility, forwardUSD: option.forwardUSD)
            } else {
                newMarks[id] = quote
            }
        }
        return try MarketSnapshot(
            valuationTime: time, indices: indices, usdRate: usdRate, marks: newMarks, source: source, representative: representative)
    }
}
