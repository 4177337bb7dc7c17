/// One tick of the shared market: its sequence number and the simulator state that gives its market.
public struct PublishedTick: Sendable, Equatable {
    public var sequence: UInt64
    /// The simulator's `sim.*` settings after the tick.
    public var state: [String: String]

    public init(sequence: UInt64, state: [String: String]) {
        self.sequence = sequence
        self.state = state
    }
}

/// The market's ticks when several serving nodes share one ledger (PostgreSQL): one node at a time drives the
/// simulator and appends each tick's state; every node applies every tick, in order, to the partitions it holds,
/// storing the tick it applied in the same transaction (setting `tick.PARTITION`). The market is thus computed once
/// and every partition moves through the same markets.
public protocol MarketTickLog: Sendable {
    /// Tries, without waiting, to become the node that drives the market; true when this node drives it.
    func tryToDrive() throws -> Bool
    /// Whether this node drives the market (it took the driver's lock and has not lost it).
    var drives: Bool { get }
    /// Keeps the driver's lock alive between ticks; throws (and stops driving) when it was lost.
    func keepDriving() throws
    /// Appends the next tick, as the driver: its sequence number. Throws, appending nothing, when this node does not
    /// (or no longer) drive.
    func append(state: [String: String]) throws -> UInt64
    /// The ticks after `sequence`, in order, at most `limit`.
    func ticks(after sequence: UInt64, limit: Int) throws -> [PublishedTick]
    /// Tick `sequence`, or nil when there is none.
    func tick(_ sequence: UInt64) throws -> PublishedTick?
    /// The newest tick, or nil when none was published.
    func latest() throws -> PublishedTick?
}
