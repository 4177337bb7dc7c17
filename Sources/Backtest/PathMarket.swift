import Foundation
import MarginEngine

/// How option volatilities move along a replayed path. The price files hold no volatility, so the run states
/// the rule it used (the report and every output name it).
public enum VolatilityRegime: Sendable, Equatable, CustomStringConvertible {
    /// Every option's volatility is its base (snapshot) volatility plus `shiftAbs` (0.10 = 10 vol points) at
    /// every step, the opening included: a fixed stressed regime, no move in volatility along the path.
    case fixed(shiftAbs: Double)
    /// Volatility rises as the coin falls: `σ = σ₀ · (S/S₀)^(−elasticity)` while the coin is below where the path
    /// started (or the window began), `σ₀` at or above it. Elasticity 1 doubles volatility when the price
    /// halves (BTC implied volatility went from about 60 % to about 130 % as BTC halved on 2020-03-12/13).
    case spotLinked(elasticity: Double)

    /// The default: volatility linked to the fall with elasticity 1.
    public static let standard = VolatilityRegime.spotLinked(elasticity: 1)
    /// Volatilities stay within what the engine accepts for a snapshot.
    public static let bounds: ClosedRange<Double> = 0.01...5

    /// Parses `fixed:0.1` or `linked:1` (also `linked` alone for elasticity 1); nil when malformed.
    public init?(argument: String) {
        let parts = argument.split(separator: ":", maxSplits: 1).map(String.init)
        switch parts.first {
        case "fixed":
            guard parts.count == 2, let shift = Double(parts[1]), shift.isFinite, shift > -1, shift <= 3 else { return nil }
            self = .fixed(shiftAbs: shift)
        case "linked":
            if parts.count == 1 {
                self = .standard
                return
            }
            guard let elasticity = Double(parts[1]), elasticity.isFinite, elasticity >= 0, elasticity <= 5 else { return nil }
            self = .spotLinked(elasticity: elasticity)
        default:
            return nil
        }
    }

    /// The volatility of an option whose base volatility is `base` when its coin is at `factor` times its
    /// starting price; clamped to ``bounds``.
    public func volatility(base: Double, factor: Double) -> Double {
        let moved: Double
        switch self {
        case .fixed(let shift): moved = base + shift
        case .spotLinked(let elasticity): moved = factor < 1 ? base * Foundation.pow(factor, -elasticity) : base
        }
        return min(max(moved, Self.bounds.lowerBound), Self.bounds.upperBound)
    }

    public var description: String {
        switch self {
        case .fixed(let shift):
            "fixed:\(DecimalText.format(shift)) (every option at its snapshot volatility + \(DecimalText.format(shift * 100)) points)"
        case .spotLinked(let elasticity):
            "linked:\(DecimalText.format(elasticity)) (σ = σ₀·(S/S₀)^−\(DecimalText.format(elasticity)) below the starting price, σ₀ above)"
        }
    }

    /// The short form accepted by ``init(argument:)``.
    public var argument: String {
        switch self {
        case .fixed(let shift): "fixed:\(DecimalText.format(shift))"
        case .spotLinked(let elasticity): "linked:\(DecimalText.format(elasticity))"
        }
    }
}

/// Builds the market at each step of a path from a base snapshot, the way the sandbox's replay does
/// (`MarketSimulator`: each coin's cumulative factor applied to the base with ``MarketSnapshot/shocked(by:onlyCoin:)``,
/// then the clock moved), extended to what a backtest needs:
///
/// - **Coins** (`BTC`, `ETH`): index × factor; perpetual and future marks and option forwards move by the same
///   absolute amount (basis held, the engine's shock).
/// - **Stablecoins** (`USDT`, `USDC`): their USD index × factor, and the marks quoted in them ÷ factor (a coin's
///   price in a depegged stablecoin rises as the stablecoin falls).
/// - **Options** are priced by Black-76 at the moved forward and the ``VolatilityRegime``'s volatility (their
///   coin mark is left to the model, as the simulator's clock does).
/// - **Time** is the base time plus the path's elapsed time; instruments expired by then leave the snapshot.
public struct PathMarket: Sendable {
    public let base: MarketSnapshot
    public let volatility: VolatilityRegime
    /// Each option's base volatility, by id.
    let baseVolatility: [String: Double]

    /// `base` restricted to what matters is the caller's choice (a smaller snapshot moves faster).
    public init(base: MarketSnapshot, catalog: InstrumentCatalog, volatility: VolatilityRegime) throws(EngineError) {
        self.base = base
        self.volatility = volatility
        var volatilities: [String: Double] = [:]
        for id in base.marks.keys.sorted() {
            guard let instrument = catalog.instrument(id), instrument.kind == .option else { continue }
            if let option = try base.market(for: instrument, path: "market.marks").option { volatilities[id] = option.volatility }
        }
        baseVolatility = volatilities
    }

    /// The snapshot at `time` with each coin at `factors[coin]` times its base price (absent: unmoved).
    /// `volatilityFactors` are the moves the volatility rule reacts to (default: `factors`; a window passes its
    /// own move while the prices start from the base).
    /// - Complexity: O(marks), a few Black-76 evaluations per option.
    public func snapshot(
        at time: UnixMillis, factors: [String: Double], volatilityFactors: [String: Double]? = nil
    ) throws(EngineError)
        -> MarketSnapshot
    {
        var snapshot = base
        // Stablecoins first: their index, and the marks quoted in them.
        let stables = factors.keys.filter { MarketSnapshot.stablecoins.contains($0) }.sorted()
        if !stables.isEmpty {
            var indices = snapshot.indices
            var marks = snapshot.marks
            for coin in stables {
                guard let factor = factors[coin], factor != 1 else { continue }
                guard let index = indices["\(coin)-USD"] else {
                    throw .missingMarketData(name: "\(coin)-USD", detail: "the path moves \(coin) but the market has no \(coin)-USD index")
                }
                indices["\(coin)-USD"] = index * factor
                for (id, quote) in marks {
                    guard let instrumentID = InstrumentID(id), instrumentID.kind != .option, instrumentID.quoteCurrency == coin,
                        let mark = quote.markPrice
                    else { continue }
                    marks[id] = MarkQuote(markPrice: mark / factor, markVolatility: quote.markVolatility, forwardUSD: quote.forwardUSD)
                }
            }
            snapshot = try MarketSnapshot(
                valuationTime: snapshot.valuationTime, indices: indices, usdRate: snapshot.usdRate, marks: marks, source: snapshot.source,
                representative: snapshot.representative)
        }
        for coin in factors.keys.sorted() where !MarketSnapshot.stablecoins.contains(coin) {
            guard let factor = factors[coin], factor != 1 else { continue }
            snapshot = try snapshot.shocked(by: factor - 1, onlyCoin: coin)
        }
        // Options: the regime's volatility at the moved forward, priced by the model; expired instruments leave.
        let moves = volatilityFactors ?? factors
        var marks: [String: MarkQuote] = [:]
        for (id, quote) in snapshot.marks {
            guard let instrumentID = InstrumentID(id) else { continue }
            if let expiry = instrumentID.expiry, expiry <= time { continue }
            guard instrumentID.kind == .option, let base = baseVolatility[id] else {
                marks[id] = quote
                continue
            }
            let instrument = Instrument(
                id: instrumentID, contractValue: 1, contractMultiplier: 1, settleCurrency: instrumentID.baseCurrency, tickSize: 1,
                lotSize: 1,
                minimumSize: 1)
            guard let option = try snapshot.market(for: instrument, path: "market.marks").option else { continue }
            let sigma = volatility.volatility(base: base, factor: moves[instrumentID.baseCurrency] ?? 1)
            marks[id] = MarkQuote(markPrice: nil, markVolatility: sigma, forwardUSD: option.forwardUSD)
        }
        return try MarketSnapshot(
            valuationTime: time, indices: snapshot.indices, usdRate: snapshot.usdRate, marks: marks, source: snapshot.source,
            representative: snapshot.representative)
    }
}

extension MarketSnapshot {
    /// The snapshot holding only the indices and the marks of `instruments` (and of the futures their options'
    /// forwards may come from): the backtest margins a few dozen instruments, not the whole catalog.
    public func restricted(to instruments: [Instrument]) throws(EngineError) -> MarketSnapshot {
        let wanted = Set(instruments.map(\.id.rawValue))
        var kept: [String: MarkQuote] = [:]
        for (id, quote) in marks where wanted.contains(id) { kept[id] = quote }
        // An option without `fwdPx` takes its forward from a same-expiry future: keep those too.
        for instrument in instruments where instrument.kind == .option {
            guard let expiry = instrument.expiry, marks[instrument.id.rawValue]?.forwardUSD == nil else { continue }
            for (id, quote) in marks
            where InstrumentID(id)?.expiry == expiry && InstrumentID(id)?.kind == .future
                && InstrumentID(id)?.baseCurrency == instrument.underlying
            {
                kept[id] = quote
            }
        }
        return try MarketSnapshot(
            valuationTime: valuationTime, indices: indices, usdRate: usdRate, marks: kept, source: source, representative: representative)
    }
}
