import Logging
import MarginEngine
import MarginStore

/// Moves this node's exchange through the shared market (``MarketTickLog``): every published tick, in order, applied
/// as a tick of its own (interest, expiry, funding, the risk loop), whose transaction also stores the tick as the one
/// each partition the node holds applied last (setting `tick.PARTITION`). A crash between two ticks leaves the stored
/// tick on the last one committed, and the node goes on from there when it starts again, so every partition applies
/// every tick exactly once.
///
/// Partitions that applied an earlier tick than this node's (their owner stopped, or they were handed over) are
/// brought up to it on an exchange of their own, tick by tick, then adopted (``adopt(_:)``).
package actor MarketFollower {
    let exchange: Exchange
    let log: any MarketTickLog
    /// The snapshot every published state moves (the same on every node: `--snapshot`).
    let base: MarketSnapshot
    /// The partitions whose tick this follower stores with every tick it applies.
    package private(set) var partitions: [Int]
    /// The tick the held partitions applied last.
    package private(set) var applied: UInt64
    /// An exchange over other partitions, at `market`: where partitions that are behind catch up before adoption.
    let makeExchange: @Sendable (_ partitions: [Int], _ market: MarketSnapshot) throws -> Exchange
    /// Set while partitions are adopted or released: the exchange does not move meanwhile.
    private var adopting = false
    /// Set while a tick is being applied (a release waits for it to end).
    private var ticking = false

    package init(
        exchange: Exchange, log: any MarketTickLog, base: MarketSnapshot, partitions: [Int], applied: UInt64,
        makeExchange: @escaping @Sendable ([Int], MarketSnapshot) throws -> Exchange
    ) {
        self.exchange = exchange
        self.log = log
        self.base = base
        self.partitions = partitions
        self.applied = applied
        self.makeExchange = makeExchange
    }

    /// The tick each of `partitions` applied last, grouped: tick → its partitions.
    package static func ticks(of partitions: [Int], in database: any LedgerStore) throws -> [UInt64: [Int]] {
        var stored: [Int: UInt64] = [:]
        for setting in try database.settings(prefix: "tick.") {
            if let partition = Int(setting.key.dropFirst("tick.".count)), let tick = UInt64(setting.value) { stored[partition] = tick }
        }
        return Dictionary(grouping: partitions.sorted()) { stored[$0] ?? 0 }
    }

    /// The market of tick `tick` (the base snapshot before the first).
    package static func market(at tick: UInt64, log: any MarketTickLog, base: MarketSnapshot) throws -> MarketSnapshot {
        guard tick > 0 else { return base }
        guard let published = try log.tick(tick) else {
            throw OKXError(.internalError, "market tick \(tick), which partitions of this node applied last, is not in the log")
        }
        return try MarketSimulator.market(base: base, state: published.state)
    }

    /// Applies every tick published after ``applied``, in order; returns the report of the last one (nil: none, or
    /// partitions are being adopted).
    @discardableResult
    package func catchUp() async throws -> TickReport? {
        guard !adopting else { return nil }
        return try await catchUp(to: nil, yielding: true)
    }

    /// Applies the ticks after ``applied`` up to `last` (every one published when nil); `yielding` stops between two
    /// ticks once partitions are being adopted or released.
    func catchUp(to last: UInt64?, yielding: Bool = false) async throws -> TickReport? {
        var report: TickReport?
        while last.map({ applied < $0 }) ?? true {
            if yielding, adopting { return report }
            let ticks = try log.ticks(after: applied, limit: 64).filter { tick in last.map { tick.sequence <= $0 } ?? true }
            if ticks.isEmpty { return report }
            for tick in ticks {
                if yielding, adopting { return report }
                let market = try MarketSimulator.market(base: base, state: tick.state)
                var settings: [String: String] = [:]
                for partition in partitions { settings["tick.\(partition)"] = String(tick.sequence) }
                ticking = true
                defer { ticking = false }
                report = try await exchange.advance(to: market, settings: settings, sequence: tick.sequence)
                applied = max(applied, tick.sequence)
            }
        }
        return report
    }

    /// Takes partitions `adopted`, which applied tick `tick` last: when that is behind this node, they first apply every
    /// tick up to this node's on an exchange of their own (each tick one transaction, as here); then this node's
    /// exchange loads them, and this follower stores their tick with every tick after. Meanwhile this node's exchange
    /// does not move.
    package func adopt(_ adopted: [Int], at tick: UInt64) async throws {
        adopting = true
        defer { adopting = false }
        // A tick being applied (by a catch-up that began before) ends first; then this node's tick stays put.
        while ticking { try await Task.sleep(nanoseconds: 5_000_000) }
        if tick > applied { _ = try await catchUp(to: tick) }
        if tick < applied {
            let behind = MarketFollower(
                exchange: try makeExchange(adopted, try Self.market(at: tick, log: log, base: base)), log: log, base: base,
                partitions: adopted, applied: tick, makeExchange: makeExchange)
            _ = try await behind.catchUp(to: applied)
            guard await behind.applied == applied else {
                throw OKXError(.internalError, "partitions \(adopted) could not reach market tick \(applied)")
            }
        }
        try await exchange.adopt(partitions: adopted)
        partitions = (partitions + adopted).sorted()
    }

    /// Gives up partitions `released`: waits for the tick being applied (if any) to end, then the exchange drops their
    /// accounts and this follower stops storing their tick. `handOver` runs last (the store lets their leases go), so
    /// that no tick of this node writes them after another node may have taken them.
    package func release(_ released: [Int], handOver: @Sendable () throws -> Void) async throws {
        adopting = true
        defer { adopting = false }
        while ticking { try await Task.sleep(nanoseconds: 5_000_000) }
        await exchange.release(partitions: released)
        partitions.removeAll { released.contains($0) }
        try handOver()
    }

    /// Catches up every `interval` seconds until cancelled; a failure is logged and tried again.
    package func run(interval: Double, logger: Logger) async {
        while !Task.isCancelled {
            do {
                try await catchUp()
            } catch {
                logger.warning("applying market tick \(applied + 1) failed: \(error)")
            }
            try? await Task.sleep(nanoseconds: UInt64(interval * 1_000_000_000))
        }
    }
}
