import RealModule

/// The Black-76 inputs of one option at a snapshot.
public struct OptionMarket: Sendable, Equatable {
    /// Forward of the option's expiry, USD per coin.
    public var forwardUSD: Double
    /// Volatility as a fraction.
    public var volatility: Double
    /// ACT/365 years from the snapshot to expiry (> 0).
    public var timeToExpiryYears: Double
    /// Continuously compounded USD rate.
    public var usdRate: Double

    public var discountFactor: Double { Double.exp(-usdRate * timeToExpiryYears) }
}

/// Everything the engine needs to value one instrument at one snapshot, resolved once.
public struct InstrumentMarket: Sendable {
    public let instrument: Instrument
    /// Mark price in the instrument's quote (coins per coin for options).
    public let markPrice: Double
    /// Index of the underlying coin in USD, `S(C-USD)`.
    public let indexUSD: Double
    /// Index of the underlying coin in the instrument's quote currency (`BTC-USDT` for a USDT-margined
    /// contract, `BTC-USD` for inverse contracts and options); scenario moves shift prices by `x ×` this.
    public let quoteIndex: Double
    /// USD per unit of the quote currency: `USDT-USD` or `USDC-USD` for linear contracts, 1 otherwise.
    public let quoteUSD: Double
    /// ACT/365 years from the snapshot to expiry; 0 for perpetuals and spot.
    public let timeToExpiryYears: Double
    /// The option's pricing inputs (nil for other kinds).
    public let option: OptionMarket?

    /// Whether `other` (the same instrument at another market) has every pricing input equal: its scenario
    /// vector, equity and requirements would then be the same.
    public func hasSameInputs(as other: InstrumentMarket) -> Bool {
        markPrice == other.markPrice && indexUSD == other.indexUSD && quoteIndex == other.quoteIndex && quoteUSD == other.quoteUSD
            && timeToExpiryYears == other.timeToExpiryYears && option == other.option
    }
}

extension MarketSnapshot {
    /// Resolves the market of `instrument`; `path` names the request field for error messages.
    ///
    /// Options take their forward from `fwdPx`, else the mark of the same-expiry future (inverse, then
    /// USDT, then USDC, converted to USD), else the index (zero basis); their volatility from `markVol`,
    /// else implied from `markPx × index`; their `markPx` from Black-76 when absent.
    public func market(for instrument: Instrument, path: String) throws(EngineError) -> InstrumentMarket {
        let id = instrument.id
        if let expiry = id.expiry, expiry <= valuationTime {
            throw .expiredInstrument(path: path, instrumentID: id.rawValue, expiry: expiry, marketTime: valuationTime)
        }
        let coin = instrument.underlying
        let indexUSD = try self.indexUSD(coin)
        switch instrument.kind {
        case .spot:
            let quoteIndex = try index(base: coin, quote: id.quoteCurrency)
            return InstrumentMarket(
                instrument: instrument, markPrice: quoteIndex, indexUSD: indexUSD, quoteIndex: quoteIndex,
                quoteUSD: try self.indexUSD(id.quoteCurrency), timeToExpiryYears: 0, option: nil)
        case .perpetual, .future:
            guard let markPrice = marks[id.rawValue]?.markPrice else {
                throw .missingMarketData(name: id.rawValue, detail: "no mark price")
            }
            let linear = instrument.margining == .linear
            return InstrumentMarket(
                instrument: instrument, markPrice: markPrice, indexUSD: indexUSD,
                quoteIndex: linear ? try index(base: coin, quote: id.quoteCurrency) : indexUSD,
                quoteUSD: linear ? try self.indexUSD(id.quoteCurrency) : 1,
                timeToExpiryYears: id.expiry.map { valuationTime.years(until: $0) } ?? 0, option: nil)
        case .option:
            let quote = marks[id.rawValue]
            guard quote?.markPrice != nil || quote?.markVolatility != nil, let strike = id.strikeUSD,
                let kind = id.optionKind, let expiry = id.expiry
            else { throw .missingMarketData(name: id.rawValue, detail: "no mark price or volatility") }
            let forward = try optionForward(id)
            let years = valuationTime.years(until: expiry)
            let discount = Double.exp(-usdRate * years)
            let volatility: Double
            if let given = quote?.markVolatility {
                volatility = given
            } else {
                let priceUSD = (quote?.markPrice ?? 0) * indexUSD
                do {
                    volatility = try ImpliedVolatility.solve(
                        price: priceUSD, kind: kind, forward: forward, strike: strike, timeToExpiryYears: years,
                        discountFactor: discount)
                } catch {
                    throw .badMarketData(
                        name: id.rawValue,
                        detail: "markPx \(DecimalText.format(quote?.markPrice ?? 0)) has no implied volatility: \(error.description)")
                }
            }
            let markPrice =
                quote?.markPrice
                ?? Black76.price(
                    kind, forward: forward, strike: strike, volatility: volatility, timeToExpiryYears: years,
                    discountFactor: discount) / indexUSD
            return InstrumentMarket(
                instrument: instrument, markPrice: markPrice, indexUSD: indexUSD, quoteIndex: indexUSD, quoteUSD: 1,
                timeToExpiryYears: years,
                option: OptionMarket(forwardUSD: forward, volatility: volatility, timeToExpiryYears: years, usdRate: usdRate))
        }
    }

    /// The forward of an option's expiry in USD (see ``market(for:path:)``).
    func optionForward(_ id: InstrumentID) throws(EngineError) -> Double {
        if let forward = marks[id.rawValue]?.forwardUSD { return forward }
        let parts = id.rawValue.split(separator: "-")
        let date = parts.count > 2 ? String(parts[2]) : ""
        let coin = id.baseCurrency
        if let inverse = marks["\(coin)-USD-\(date)"]?.markPrice { return inverse }
        for stable in ["USDT", "USDC"] {
            if let linear = marks["\(coin)-\(stable)-\(date)"]?.markPrice { return linear * (try indexUSD(stable)) }
        }
        return try indexUSD(coin)
    }
}
