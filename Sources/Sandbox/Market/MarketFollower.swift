import Logging
import MarginEngine
import MarginStore

/// Moves this node's exchange through the shared market (``MarketTickLog``): every published tick, in order, applied
/// as a tick of its own (interest, expiry, funding, the risk loop), whose transaction also stores the tick as the one
/// each partition the node holds applied last (setting `tick.PARTITION`). A crash between two ticks leaves the stored
/// tick on the last one committed, and the node goes on from there when it starts again, so every partition applies
/// every tick exactly once.
package actor MarketFollower {
    let exchange: Exchange
    let log: any MarketTickLog
    /// The snapshot every published state moves (the same on every node: `--snapshot`).
    let base: MarketSnapshot
    let partitions: [Int]
    /// The tick the held partitions applied last.
    package private(set) var applied: UInt64

    package init(exchange: Exchange, log: any MarketTickLog, base: MarketSnapshot, partitions: [Int], applied: UInt64) {
        self.exchange = exchange
        self.log = log
        self.base = base
        self.partitions = partitions
        self.applied = applied
    }

    /// The tick `partitions` applied last (the same for all of them) and its market: where an exchange holding them
    /// starts. Throws when they applied different ticks (a node takes partitions that moved together), or when the
    /// tick is missing from the log.
    package static func position(
        of partitions: [Int], in database: any LedgerStore, log: any MarketTickLog, base: MarketSnapshot
    ) throws -> (tick: UInt64, market: MarketSnapshot) {
        var stored: [Int: UInt64] = [:]
        for setting in try database.settings(prefix: "tick.") {
            if let partition = Int(setting.key.dropFirst("tick.".count)), let tick = UInt64(setting.value) { stored[partition] = tick }
        }
        let ticks = Set(partitions.map { stored[$0] ?? 0 })
        guard ticks.count == 1, let tick = ticks.first else {
            let detail = partitions.map { "\($0): \(stored[$0] ?? 0)" }.joined(separator: ", ")
            throw OKXError(
                .internalError,
                "the partitions applied different market ticks (\(detail)); a node takes partitions that applied the same one")
        }
        guard tick > 0 else { return (0, base) }
        guard let published = try log.tick(tick) else {
            throw OKXError(.internalError, "market tick \(tick), which the partitions applied last, is not in the log")
        }
        return (tick, try MarketSimulator.market(base: base, state: published.state))
    }

    /// Applies every tick published after ``applied``, in order; returns the report of the last one (nil: none).
    @discardableResult
    package func catchUp() async throws -> TickReport? {
        var last: TickReport?
        while true {
            let ticks = try log.ticks(after: applied, limit: 64)
            if ticks.isEmpty { return last }
            for tick in ticks {
                let market = try MarketSimulator.market(base: base, state: tick.state)
                var settings: [String: String] = [:]
                for partition in partitions { settings["tick.\(partition)"] = String(tick.sequence) }
                last = try await exchange.advance(to: market, settings: settings, sequence: tick.sequence)
                applied = max(applied, tick.sequence)
            }
        }
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
