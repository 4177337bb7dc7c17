import MarginEngine

/// Random valid portfolios over the instruments of a market snapshot, for property tests.
public struct RandomPortfolios: Sendable {
    public let catalog: InstrumentCatalog
    public let market: MarketSnapshot
    /// Live derivatives priced by the snapshot, sorted by id.
    public let instruments: [Instrument]

    /// Collects the derivatives of `catalog` that `market` prices (options sampled to at most
    /// `optionsPerCoin` per coin, spread over expiries and strikes).
    public init(catalog: InstrumentCatalog, market: MarketSnapshot, parameters: MarginParameters, optionsPerCoin: Int = 40) {
        self.catalog = catalog
        self.market = market
        var chosen: [Instrument] = []
        var optionsByCoin: [String: [Instrument]] = [:]
        for instrument in catalog.instruments where instrument.isDerivative {
            guard (try? market.market(for: instrument, path: "")) != nil else { continue }
            if instrument.kind == .option {
                optionsByCoin[instrument.underlying, default: []].append(instrument)
            } else {
                chosen.append(instrument)
            }
        }
        for coin in optionsByCoin.keys.sorted() {
            let options = optionsByCoin[coin] ?? []
            let stride = max(1, options.count / optionsPerCoin)
            for index in Swift.stride(from: 0, to: options.count, by: stride) { chosen.append(options[index]) }
        }
        instruments = chosen.sorted { $0.id < $1.id }
    }

    /// A portfolio of 1…`maximumPositions` positions and a few balances, drawn from `seed`.
    public func portfolio(seed: UInt64, maximumPositions: Int = 12, withBalances: Bool = true) -> Portfolio {
        var generator = SeededGenerator(seed: seed)
        let count = Int.random(in: 1...maximumPositions, using: &generator)
        var positions: [Position] = []
        for index in 0..<count {
            let instrument = instruments[Int.random(in: 0..<instruments.count, using: &generator)]
            let lots = Double(Int.random(in: 1...200, using: &generator)) * (Bool.random(using: &generator) ? 1 : -1)
            let size = lots * instrument.lotSize * (instrument.kind == .option ? 1 : 5)
            let mark = (try? market.market(for: instrument, path: "").markPrice) ?? 1
            let averagePrice = max(mark * Double.random(in: 0.9...1.1, using: &generator), instrument.tickSize)
            positions.append(Position(instrument: instrument, sizeContracts: size, averagePrice: averagePrice, source: "simPos[\(index)]"))
        }
        var balances: [String: Double] = [:]
        if withBalances {
            balances["USDT"] = Double(Int.random(in: 0...500_000, using: &generator))
            for coin in ["BTC", "ETH", "SOL"] where Bool.random(using: &generator) {
                balances[coin] = Double(Int.random(in: -20...20, using: &generator)) * (coin == "BTC" ? 0.1 : 1)
            }
        }
        return Portfolio(positions: positions, cashBalances: balances)
    }
}
