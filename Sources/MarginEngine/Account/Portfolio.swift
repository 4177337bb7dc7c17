/// A derivative position as the engine margins it.
public struct Position: Sendable, Equatable {
    public var instrument: Instrument
    /// Signed size in contracts (long > 0, short < 0).
    public var sizeContracts: Double
    /// Entry price in the instrument's quote (USDT/USDC/USD per coin; coins per coin for options).
    public var averagePrice: Double
    /// Where the position came from, for error messages (`simPos[3]`).
    public var source: String
    /// The leverage set for the position in classic mode (nil: the parameter set's default). Portfolio
    /// margin ignores it.
    public var leverage: Double?

    public init(instrument: Instrument, sizeContracts: Double, averagePrice: Double, source: String = "", leverage: Double? = nil) {
        self.instrument = instrument
        self.sizeContracts = sizeContracts
        self.averagePrice = averagePrice
        self.source = source
        self.leverage = leverage
    }

    /// The canonical order: by instrument id, then size, then entry price, so that the order in which a
    /// user lists positions never changes a bit of the result.
    static func canonicallyOrdered(_ lhs: Position, _ rhs: Position) -> Bool {
        if lhs.instrument.id != rhs.instrument.id { return lhs.instrument.id < rhs.instrument.id }
        if lhs.sizeContracts != rhs.sizeContracts { return lhs.sizeContracts < rhs.sizeContracts }
        return lhs.averagePrice < rhs.averagePrice
    }
}

/// An account's holdings: derivative positions and cash balances by currency.
public struct Portfolio: Sendable {
    public var positions: [Position]
    /// Cash balance per currency in that currency's units (negative = borrowed).
    public var cashBalances: [String: Double]
    /// A user-chosen spot in use per coin (magnitude in coins), clamped to what the balance allows.
    public var chosenSpotInUse: [String: Double]

    public init(positions: [Position] = [], cashBalances: [String: Double] = [:], chosenSpotInUse: [String: Double] = [:]) {
        self.positions = positions
        self.cashBalances = cashBalances
        self.chosenSpotInUse = chosenSpotInUse
    }
}

/// Spot in use (spec 02 §2): the part of a coin balance `B` that hedges the unit's derivative delta `Δd`.
///
/// `maximum = sign(B)·min(|B|, |Δd|)` when `B·Δd < 0`, else 0. A user-chosen amount is clamped to
/// `[0, |maximum|]` and takes the sign of `B`.
public func spotInUse(balanceCoins: Double, derivativeDeltaCoins: Double, chosenCoins: Double?) -> (amount: Double, maximum: Double) {
    let maximum = balanceCoins * derivativeDeltaCoins < 0
        ? (balanceCoins < 0 ? -1.0 : 1.0) * min(abs(balanceCoins), abs(derivativeDeltaCoins)) : 0
    guard let chosenCoins else { return (maximum, maximum) }
    let magnitude = min(abs(chosenCoins), abs(maximum))
    return (maximum < 0 ? -magnitude : magnitude, maximum)
}
