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
    /// The position exactly as the ledger holds it, when it comes from one (a sandbox account): trades
    /// (``Portfolio/trading(_:sizeContracts:price:feeRate:market:settleIndexUSD:)``) then start from these
    /// digits rather than from the `Double`s, so a planned fill equals the one the ledger books.
    public var ledger: LedgerPosition?

    public init(
        instrument: Instrument, sizeContracts: Double, averagePrice: Double, source: String = "", leverage: Double? = nil,
        ledger: LedgerPosition? = nil
    ) {
        self.instrument = instrument
        self.sizeContracts = sizeContracts
        self.averagePrice = averagePrice
        self.source = source
        self.leverage = leverage
        self.ledger = ledger
    }

    /// A position the ledger holds, with its risk values converted at ``LedgerBoundary``.
    public init(instrument: Instrument, ledger: LedgerPosition, source: String = "", leverage: Double? = nil) {
        self.init(
            instrument: instrument, sizeContracts: LedgerBoundary.risk(ledger.sizeContracts),
            averagePrice: LedgerBoundary.risk(ledger.averagePrice),
            source: source, leverage: leverage, ledger: ledger)
    }

    /// The canonical order: by instrument id, then size, then entry price, so that the order in which a
    /// user lists positions never changes a bit of the result.
    public static func canonicallyOrdered(_ lhs: Position, _ rhs: Position) -> Bool {
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

    /// The positions in canonical order (``Position/canonicallyOrdered(_:_:)``).
    public func canonicallyOrderedPositions() -> [Position] {
        canonicalGroups().flatMap { group in group.slots.map { positions[$0] } }
    }

    /// Indices into ``positions`` grouped by instrument id, ids ascending, each group ordered by size then
    /// entry price: the canonical order, with each instrument's positions together.
    ///
    /// Sorting 1,000 positions by comparing ids directly costs milliseconds; grouping by id first sorts
    /// only the distinct ids, with the same result.
    public func canonicalGroups() -> [(instrumentID: String, slots: [Int])] {
        // Number the distinct ids in order of appearance (one hash per position)...
        var rankByID: [String: Int] = [:]
        rankByID.reserveCapacity(positions.count)
        var ids: [String] = []
        var firstRank = [Int](repeating: 0, count: positions.count)
        for slot in positions.indices {
            let id = positions[slot].instrument.id.rawValue
            if let known = rankByID[id] {
                firstRank[slot] = known
            } else {
                rankByID[id] = ids.count
                firstRank[slot] = ids.count
                ids.append(id)
            }
        }
        // ...sort only the distinct ids, then bucket the slots by id order (stable, so slot order within).
        // Instrument ids are ASCII by grammar, so byte order is `String` order, and much cheaper.
        let idOrder = ids.indices.sorted { ids[$0].utf8.lexicographicallyPrecedes(ids[$1].utf8) }
        var orderOfRank = [Int](repeating: 0, count: ids.count)
        for (position, rank) in idOrder.enumerated() { orderOfRank[rank] = position }
        var starts = [Int](repeating: 0, count: ids.count + 1)
        for slot in positions.indices { starts[orderOfRank[firstRank[slot]] + 1] += 1 }
        for group in 0..<ids.count { starts[group + 1] += starts[group] }
        var next = starts
        var bucketed = [Int](repeating: 0, count: positions.count)
        for slot in positions.indices {
            let group = orderOfRank[firstRank[slot]]
            bucketed[next[group]] = slot
            next[group] += 1
        }
        return (0..<ids.count).map { group in
            var slots = Array(bucketed[starts[group]..<starts[group + 1]])
            if slots.count > 1 {
                let keyed = slots.map { (size: positions[$0].sizeContracts, price: positions[$0].averagePrice, slot: $0) }
                slots = keyed.sorted { ($0.size, $0.price, $0.slot) < ($1.size, $1.price, $1.slot) }.map(\.slot)
            }
            return (ids[idOrder[group]], slots)
        }
    }
}

/// Spot in use (docs/methodology/02-margin.md §2): the part of a coin balance `B` that hedges the unit's derivative
/// delta `Δd`.
///
/// `maximum = sign(B)·min(|B|, |Δd|)` when `B·Δd < 0`, else 0. A user-chosen amount is clamped to
/// `[0, |maximum|]` and takes the sign of `B`.
public func spotInUse(balanceCoins: Double, derivativeDeltaCoins: Double, chosenCoins: Double?) -> (amount: Double, maximum: Double) {
    let maximum =
        balanceCoins * derivativeDeltaCoins < 0
        ? (balanceCoins < 0 ? -1.0 : 1.0) * min(abs(balanceCoins), abs(derivativeDeltaCoins)) : 0
    guard let chosenCoins else { return (maximum, maximum) }
    let magnitude = min(abs(chosenCoins), abs(maximum))
    return (maximum < 0 ? -magnitude : magnitude, maximum)
}
