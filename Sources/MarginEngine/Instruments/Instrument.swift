/// Static contract terms of one listed instrument; knows nothing about markets or pricing.
///
/// Units by kind (docs/methodology/01-instruments-market.md §1.1):
/// - linear perpetual/future: one contract is ``contractValue`` coins; price in the quote stablecoin;
/// - inverse perpetual/future: one contract is ``contractValue`` USD of face; price in USD;
/// - option: one contract is ``contractValue`` × ``contractMultiplier`` coins of underlying; premium quoted
///   in coins per coin;
/// - spot: one unit is one coin.
///
/// Immutable and shared: a class, because positions, markets, scenario vectors and results all hold the
/// instrument, and copying its strings and catalog entry each time dominated the Position Builder's cost.
/// Identity is the instrument id.
public final class Instrument: Sendable, Hashable {
    public let id: InstrumentID
    /// OKX `ctVal`: coins per contract (linear, option) or USD face per contract (inverse).
    public let contractValue: Double
    /// OKX `ctMult`.
    public let contractMultiplier: Double
    /// OKX `settleCcy`: the stablecoin of a linear contract, the coin of an inverse contract or option.
    public let settleCurrency: String
    /// Minimum price increment, in the quote currency (coins for options).
    public let tickSize: Double
    /// Size increment, in contracts (coins for spot).
    public let lotSize: Double
    /// Smallest order size, in contracts (coins for spot).
    public let minimumSize: Double
    /// The catalog entry as OKX publishes it, so a server can return it unchanged.
    public let catalogEntry: JSONObject

    public var kind: InstrumentKind { id.kind }
    public var underlying: String { id.baseCurrency }
    public var quoteCurrency: String { id.quoteCurrency }
    public var expiry: UnixMillis? { id.expiry }
    public var margining: Margining? { id.margining }
    public var isDerivative: Bool { kind != .spot }

    /// Coins of underlying per contract, for linear contracts and options (`ctVal × ctMult`).
    public var coinsPerContract: Double { contractValue * contractMultiplier }

    public init(
        id: InstrumentID, contractValue: Double, contractMultiplier: Double, settleCurrency: String,
        tickSize: Double, lotSize: Double, minimumSize: Double, catalogEntry: JSONObject = JSONObject()
    ) {
        self.id = id
        self.contractValue = contractValue
        self.contractMultiplier = contractMultiplier
        self.settleCurrency = settleCurrency
        self.tickSize = tickSize
        self.lotSize = lotSize
        self.minimumSize = minimumSize
        self.catalogEntry = catalogEntry
    }

    public static func == (lhs: Instrument, rhs: Instrument) -> Bool { lhs === rhs || lhs.id == rhs.id }
    public func hash(into hasher: inout Hasher) { hasher.combine(id) }
}
