/// The market inputs of one instrument in a snapshot.
public struct MarkQuote: Sendable, Equatable {
    /// Mark price in the instrument's quote (USDT/USDC/USD per coin; coins per coin for options).
    public var markPrice: Double?
    /// Option mark implied volatility as a fraction (0.55).
    public var markVolatility: Double?
    /// Option forward for the expiry, USD per coin.
    public var forwardUSD: Double?
    /// A perpetual's funding rate for the coming funding period as its exchange published it (OKX
    /// `public/funding-rate` `fundingRate`), a fraction of the position value (0.0001 = 1 bp). Not used by the
    /// margin; a sandbox pays funding at it when given.
    public var fundingRate: Double?

    public init(markPrice: Double? = nil, markVolatility: Double? = nil, forwardUSD: Double? = nil, fundingRate: Double? = nil) {
        self.markPrice = markPrice
        self.markVolatility = markVolatility
        self.forwardUSD = forwardUSD
        self.fundingRate = fundingRate
    }
}

/// Every market input at one instant (docs/methodology/01-instruments-market.md §1.2): index prices, the USD rate, and
/// marks, forwards and volatilities by instrument.
///
/// A snapshot need only hold what the portfolio at hand needs. Construction validates every number
/// (finite and positive where it must be) and rejects instruments already expired at ``valuationTime``.
/// Missing crosses are derived (`BTC-USDT = BTC-USD / USDT-USD`, `BTC-USD = BTC-USDT × USDT-USD`).
public struct MarketSnapshot: Sendable {
    /// The snapshot's instant; every time to expiry is measured from it.
    public let valuationTime: UnixMillis
    /// Index prices by pair (`BTC-USD`, `USDT-USD`), as given.
    public let indices: [String: Double]
    /// Continuously compounded USD rate for discounting option values.
    public let usdRate: Double
    /// Marks by instrument id.
    public let marks: [String: MarkQuote]
    /// Free-form provenance note.
    public let source: String
    /// Names of indices and instruments whose values are representative rather than observed.
    public let representative: [String]

    /// Currencies whose index does not move in MR1–MR6 (their depeg risk is MR9's).
    public static let stablecoins: Set<String> = ["USDT", "USDC"]

    /// The prices a snapshot accepts: indices in USD per coin, marks and forwards in their quote (option
    /// marks only below the upper bound). Far wider
    /// than any listed coin or option (and than any stress shock of one), narrow enough that no coin
    /// conversion or product of prices leaves a Double: a coin-margined perpetual marked at 7.7e-319
    /// (subnormal, "greater than 0") made its position worth infinitely many coins (found by fuzzing).
    public static let priceRange: ClosedRange<Double> = 1e-15...1e15

    /// A validated snapshot built in code.
    public init(
        valuationTime: UnixMillis, indices: [String: Double], usdRate: Double = 0, marks: [String: MarkQuote],
        source: String = "", representative: [String] = []
    ) throws(EngineError) {
        guard valuationTime.rawValue > 0 else {
            throw .invalidField(path: "market.ts", value: String(valuationTime.rawValue), reason: "must be a positive Unix time in ms")
        }
        for (pair, price) in indices.sorted(by: { $0.key < $1.key }) {
            let parts = pair.split(separator: "-")
            guard parts.count == 2, parts[0] != parts[1], !parts[0].isEmpty else {
                throw .invalidField(path: "market.indices", value: "\"\(pair)\"", reason: "is not an index pair like BTC-USD")
            }
            guard Self.priceRange.contains(price) else {
                throw .invalidField(path: "market.indices.\(pair)", value: DecimalText.formatLenient(price), reason: Self.priceReason)
            }
        }
        guard usdRate.isFinite, abs(usdRate) < 1 else {
            throw .invalidField(
                path: "market.rates.USD", value: DecimalText.formatLenient(usdRate), reason: "must be a finite rate between -1 and 1")
        }
        for (id, quote) in marks.sorted(by: { $0.key < $1.key }) {
            guard let instrumentID = InstrumentID(id), instrumentID.kind != .spot else {
                throw .unknownInstrument(path: "market.marks", instrumentID: id)
            }
            if let expiry = instrumentID.expiry, expiry <= valuationTime {
                throw .expiredInstrument(path: "market.marks", instrumentID: id, expiry: expiry, marketTime: valuationTime)
            }
            for (name, value) in [("markPx", quote.markPrice), ("fwdPx", quote.forwardUSD)] {
                guard let value else { continue }
                // A far out-of-the-money option is legitimately worth 1e-28 coins; it is only bounded above.
                if instrumentID.kind == .option, name == "markPx" {
                    guard value.isFinite, value > 0, value <= Self.priceRange.upperBound else {
                        throw .invalidField(
                            path: "market.marks[\(id)].markPx", value: DecimalText.formatLenient(value),
                            reason: "must be greater than 0 and at most \(DecimalText.format(Self.priceRange.upperBound))")
                    }
                } else if !Self.priceRange.contains(value) {
                    throw .invalidField(
                        path: "market.marks[\(id)].\(name)", value: DecimalText.formatLenient(value), reason: Self.priceReason)
                }
            }
            if let volatility = quote.markVolatility, !(volatility.isFinite && volatility > 0) {
                throw .invalidField(
                    path: "market.marks[\(id)].markVol", value: DecimalText.formatLenient(volatility),
                    reason: "must be a finite number greater than 0")
            }
            if let volatility = quote.markVolatility, volatility > ImpliedVolatility.maximumVolatility {
                throw .invalidField(
                    path: "market.marks[\(id)].markVol", value: DecimalText.format(volatility), reason: "must be at most 10 (1000 %)")
            }
            if let rate = quote.fundingRate {
                guard instrumentID.kind == .perpetual else {
                    throw .invalidField(
                        path: "market.marks[\(id)].fundingRate", value: DecimalText.formatLenient(rate),
                        reason: "applies to perpetuals only")
                }
                guard rate.isFinite, abs(rate) <= Self.fundingRateBound else {
                    throw .invalidField(
                        path: "market.marks[\(id)].fundingRate", value: DecimalText.formatLenient(rate),
                        reason:
                            "must be a finite rate between -\(DecimalText.format(Self.fundingRateBound)) and \(DecimalText.format(Self.fundingRateBound))"
                    )
                }
            }
            if instrumentID.kind == .option {
                guard quote.markPrice != nil || quote.markVolatility != nil else {
                    throw .missingMarketData(name: id, detail: "neither markPx nor markVol")
                }
            } else {
                guard quote.markPrice != nil else { throw .missingMarketData(name: id, detail: "no markPx") }
            }
        }
        self.valuationTime = valuationTime
        self.indices = indices
        self.usdRate = usdRate
        self.marks = marks
        self.source = source
        self.representative = representative
    }

    /// The largest funding rate a snapshot accepts in magnitude (per funding period): far above any exchange's
    /// cap (OKX's is 0.0375 for the most volatile perpetuals), below anything that would pay a position's
    /// value several times over in one period.
    public static let fundingRateBound = 0.5

    static let priceReason =
        "must be a price between \(DecimalText.format(priceRange.lowerBound)) and \(DecimalText.format(priceRange.upperBound))"

    /// Parses and validates a snapshot document (docs/methodology/01-instruments-market.md §1.2).
    public init(json: JSONValue) throws(EngineError) {
        let root = FieldReader(json, path: "market")
        try root.rejectUnknownKeys(["ts", "indices", "rates", "marks", "source", "representative"])
        let ts = try root.required("ts").int64()
        var indices: [String: Double] = [:]
        let indexReader = try root.required("indices")
        for pair in try indexReader.objectKeys() { indices[pair] = try indexReader.required(pair).positiveDouble() }
        var usdRate = 0.0
        if let rates = try root.optional("rates") {
            try rates.rejectUnknownKeys(["USD"])
            usdRate = try rates.optional("USD")?.double(in: -0.99...0.99) ?? 0
        }
        var marks: [String: MarkQuote] = [:]
        for entry in try root.required("marks").elements() {
            try entry.rejectUnknownKeys(["instId", "markPx", "markVol", "fwdPx", "fundingRate"])
            let id = try entry.required("instId").string()
            guard let instrumentID = InstrumentID(id), instrumentID.kind != .spot else {
                throw .unknownInstrument(path: "\(entry.path).instId", instrumentID: id)
            }
            if let expiry = instrumentID.expiry, expiry.rawValue <= ts {
                throw .expiredInstrument(path: "\(entry.path).instId", instrumentID: id, expiry: expiry, marketTime: UnixMillis(ts))
            }
            let quote = MarkQuote(
                markPrice: try entry.optional("markPx")?.positiveDouble(),
                markVolatility: try entry.optional("markVol")?.double(in: 0.000_001...ImpliedVolatility.maximumVolatility),
                forwardUSD: try entry.optional("fwdPx")?.positiveDouble(),
                fundingRate: try entry.optional("fundingRate")?.double(in: -Self.fundingRateBound...Self.fundingRateBound))
            if instrumentID.kind == .option, quote.markPrice == nil, quote.markVolatility == nil {
                throw .missingField(path: "\(entry.path).markVol")
            }
            if instrumentID.kind != .option, quote.markPrice == nil { throw .missingField(path: "\(entry.path).markPx") }
            guard marks.updateValue(quote, forKey: id) == nil else {
                throw .invalidField(path: "\(entry.path).instId", value: "\"\(id)\"", reason: "appears twice")
            }
        }
        var representative: [String] = []
        if let list = try root.optional("representative") {
            for item in try list.elements() { representative.append(try item.string()) }
        }
        try self.init(
            valuationTime: UnixMillis(ts), indices: indices, usdRate: usdRate, marks: marks,
            source: try root.optional("source")?.string() ?? "", representative: representative)
    }

    /// Parses and validates snapshot bytes.
    public init(bytes: some Sequence<UInt8>) throws(EngineError) {
        let json: JSONValue
        do { json = try JSONParser.parse(bytes) } catch { throw .malformedDocument(document: "market", detail: error.description) }
        try self.init(json: json)
    }

    /// The USD price of one unit of `currency`: 1 for USD, `C-USD` when given, else derived through a
    /// stablecoin cross (`C-USDT × USDT-USD`, then `C-USDC × USDC-USD`).
    public func indexUSD(_ currency: String) throws(EngineError) -> Double {
        if currency == "USD" { return 1 }
        if let direct = indices["\(currency)-USD"] { return direct }
        for stable in ["USDT", "USDC"] where stable != currency {
            if let cross = indices["\(currency)-\(stable)"], let stableUSD = indices["\(stable)-USD"] { return cross * stableUSD }
        }
        throw .missingMarketData(name: "\(currency)-USD", detail: "no index price")
    }

    /// The index of `base` in `quote`: as given when present, else `indexUSD(base) / indexUSD(quote)`.
    public func index(base: String, quote: String) throws(EngineError) -> Double {
        if quote == "USD" { return try indexUSD(base) }
        if let direct = indices["\(base)-\(quote)"] { return direct }
        let baseUSD: Double
        let quoteUSD: Double
        do {
            baseUSD = try indexUSD(base)
            quoteUSD = try indexUSD(quote)
        } catch {
            throw .missingMarketData(name: "\(base)-\(quote)", detail: "no index price")
        }
        return baseUSD / quoteUSD
    }
}

extension DecimalText {
    /// Like ``format(_:)`` but tolerates NaN and infinity, for error messages about bad input.
    static func formatLenient(_ value: Double) -> String { value.isFinite ? format(value) : "\(value)" }
}
