import Foundation
import Logging
import MarginEngine
import MarginStore

/// How the sandbox's market moves (docs/methodology/06-sandbox-api.md §5).
package enum MarketMode: Sendable, Equatable {
    /// The snapshot, frozen (prices and time); only admin shocks move it.
    case staticSnapshot
    /// Seeded geometric Brownian motion with jumps per coin; market time advances one step per tick.
    case random(seed: UInt64)
    /// A CSV price path (`timestamp_utc,…,close`) replayed on one coin, one row per tick.
    case replay(path: String, coin: String)
    /// Marks, indices and volatilities polled from an OKX v5 endpoint (``UpstreamMarket``); market time is the
    /// upstream's. Nothing moves the market but the upstream.
    case follow(url: String)
}

/// One step of a CSV replay.
struct ReplayRow: Sendable {
    var time: Int64
    var close: Double
}

/// Drives the market: applies moves to the base snapshot and hands each new snapshot to the exchange,
/// which re-margins and liquidates. The state (market time, each coin's cumulative move, the random
/// generator, the replay position) is stored after every tick, so a restart continues where it stopped.
public actor MarketSimulator {
    package let exchange: Exchange
    package let mode: MarketMode
    /// The snapshot the moves apply to; in follow mode the upstream's latest.
    var base: MarketSnapshot
    let database: any LedgerStore
    /// Market milliseconds per tick (random mode).
    let stepMilliseconds: Int64
    var time: UnixMillis
    var factors: [String: Double] = [:]
    var randomState: UInt64
    var replayRows: [ReplayRow] = []
    var replayIndex = 0
    package private(set) var ticks = 0

    /// Annual volatility of the random mode by tier, and jumps per year (size N(−3 %, 6 %)).
    static let volatility: [RiskTier: Double] = [.tier1: 0.6, .tier2: 0.9, .tier3: 1.2]
    static let jumpsPerYear = 12.0

    /// With a shared market: where ticks are published (nil: this node's exchange is the only one, and each tick is
    /// applied to it directly), and what applies them here.
    let log: (any MarketTickLog)?
    let follower: MarketFollower?

    package init(
        exchange: Exchange, base: MarketSnapshot, mode: MarketMode, database: any LedgerStore, stepSeconds: Double = 1,
        follower: MarketFollower? = nil
    ) throws {
        self.exchange = exchange
        self.base = base
        self.mode = mode
        self.database = database
        self.follower = follower
        log = follower?.log
        stepMilliseconds = Int64(stepSeconds * 1000)
        var settings: [String: String] = [:]
        // With a shared market the published ticks hold the state (a new driver restores the newest: ``drive(interval:)``).
        if log == nil { for setting in try database.settings(prefix: "sim.") { settings[setting.key] = setting.value } }
        let restored = Self.restored(settings, base: base, mode: mode)
        time = restored.time
        randomState = restored.random
        replayIndex = restored.replayIndex
        factors = restored.factors
        if case .replay(let path, _) = mode { replayRows = try Self.loadReplay(path) }
    }

    /// Takes the state a tick stored (`sim.*` settings; what is missing starts afresh: the base's time, the seed, no moves).
    func restore(_ settings: [String: String]) {
        let restored = Self.restored(settings, base: base, mode: mode)
        time = restored.time
        randomState = restored.random
        replayIndex = restored.replayIndex
        factors = restored.factors
    }

    static func restored(
        _ settings: [String: String], base: MarketSnapshot, mode: MarketMode
    ) -> (time: UnixMillis, random: UInt64, replayIndex: Int, factors: [String: Double]) {
        var time = base.valuationTime
        var random: UInt64 = 0
        if case .random(let seed) = mode { random = seed }
        var replayIndex = 0
        var factors: [String: Double] = [:]
        for (key, value) in settings {
            switch key {
            case "sim.time": time = UnixMillis(Int64(value) ?? time.rawValue)
            case "sim.random": random = UInt64(value) ?? random
            case "sim.replay": replayIndex = Int(value) ?? 0
            default:
                if key.hasPrefix("sim.factor."), let factor = Double(value) { factors[String(key.dropFirst("sim.factor.".count))] = factor }
            }
        }
        if case .follow = mode {
            // The upstream's prices are taken as they are: moves stored by another mode are undone (and stored so).
            for coin in factors.keys { factors[coin] = 1 }
            time = max(time, base.valuationTime)
        }
        return (time, random, replayIndex, factors)
    }

    static func loadReplay(_ path: String) throws -> [ReplayRow] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw CredentialError("cannot read the replay file \(path)")
        }
        var lines = text.split(whereSeparator: \.isNewline).map(String.init)
        guard let header = lines.first?.split(separator: ",").map(String.init),
            let timeColumn = header.firstIndex(where: { $0.hasPrefix("timestamp") }), let closeColumn = header.firstIndex(of: "close")
        else { throw CredentialError("\(path): the replay CSV needs timestamp_utc and close columns") }
        lines.removeFirst()
        let formatter = ISO8601DateFormatter()
        var rows: [ReplayRow] = []
        for (number, line) in lines.enumerated() {
            let cells = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard cells.count > max(timeColumn, closeColumn), let date = formatter.date(from: cells[timeColumn]),
                let close = Double(cells[closeColumn]), close.isFinite, close > 0
            else { throw CredentialError("\(path) line \(number + 2): expected an ISO time and a positive close") }
            rows.append(ReplayRow(time: Int64(date.timeIntervalSince1970 * 1000), close: close))
        }
        guard rows.count >= 2 else { throw CredentialError("\(path): the replay needs at least two rows") }
        return rows
    }

    /// The current market built from the base snapshot: each coin moved by its cumulative factor, then the
    /// clock advanced.
    package func currentMarket() throws -> MarketSnapshot {
        try Self.market(base: base, factors: factors, time: time)
    }

    /// The market of a published tick's state: what the driver's ``currentMarket()`` was when it published it.
    package static func market(base: MarketSnapshot, state: [String: String]) throws -> MarketSnapshot {
        let restored = Self.restored(state, base: base, mode: .staticSnapshot)
        return try market(base: base, factors: restored.factors, time: restored.time)
    }

    static func market(base: MarketSnapshot, factors: [String: Double], time: UnixMillis) throws -> MarketSnapshot {
        var snapshot = base
        do {
            for coin in factors.keys.sorted() {
                guard let factor = factors[coin], factor != 1 else { continue }
                snapshot = try snapshot.shocked(by: factor - 1, onlyCoin: coin)
            }
            return try snapshot.advanced(to: time)
        } catch {
            throw OKXError(.internalError, "the simulated market is invalid: \(error.description)")
        }
    }

    /// The state to store with a tick (the exchange writes it in the tick's transaction).
    func persistentState() -> [String: String] {
        var settings = [
            "sim.time": String(time.rawValue), "sim.random": String(randomState), "sim.replay": String(replayIndex),
        ]
        for (coin, factor) in factors { settings["sim.factor.\(coin)"] = String(factor) }
        return settings
    }

    /// Moves coins by `moves` (fractions) and the clock by `advanceSeconds`, then ticks the exchange.
    @discardableResult
    package func shock(_ moves: [String: Double], advanceSeconds: Double = 0) async throws -> TickReport {
        if case .follow(let url) = mode {
            throw OKXError.parameter("the market follows \(url): a shock here would invent prices; shock the upstream instead")
        }
        try takeTheMarket()
        // Everything is checked before anything moves: a refused shock changes nothing.
        for (coin, move) in moves.sorted(by: { $0.key < $1.key }) {
            guard move > -0.99, move < 10, move.isFinite else {
                throw OKXError.parameter("move \(move) of \(coin) must be between -0.99 and 10")
            }
            guard (try? base.indexUSD(coin)) != nil else { throw OKXError.parameter("coin \(coin) has no index in the market") }
        }
        guard advanceSeconds >= 0, advanceSeconds <= 366 * 86_400 else {
            throw OKXError.parameter("advanceSeconds \(advanceSeconds) must be 0 to one year")
        }
        for (coin, move) in moves { factors[coin, default: 1] *= 1 + move }
        time = UnixMillis(time.rawValue + Int64(advanceSeconds * 1000))
        return try await apply()
    }

    /// One step of the configured mode (nil in static mode or at the end of a replay).
    @discardableResult
    package func step() async throws -> TickReport? {
        try takeTheMarket()
        switch mode {
        case .staticSnapshot, .follow:
            return nil
        case .random:
            let years = Double(stepMilliseconds) / 31_536_000_000
            let coins = Set(base.indices.keys.compactMap { $0.split(separator: "-").first.map(String.init) })
                .subtracting(MarketSnapshot.stablecoins).subtracting(["USD"]).sorted()
            for coin in coins {
                let sigma = Self.volatility[exchange.parameters.tier(of: coin)] ?? 0.8
                var move = sigma * years.squareRoot() * normal() - 0.5 * sigma * sigma * years
                if uniform() < Self.jumpsPerYear * years { move += -0.03 + 0.06 * normal() }
                factors[coin, default: 1] *= Foundation.exp(move)
            }
            time = UnixMillis(time.rawValue + stepMilliseconds)
        case .replay(_, let coin):
            guard replayIndex + 1 < replayRows.count else { return nil }
            replayIndex += 1
            factors[coin] = replayRows[replayIndex].close / replayRows[0].close
            time = UnixMillis(time.rawValue + (replayRows[replayIndex].time - replayRows[replayIndex - 1].time))
        }
        return try await apply()
    }

    /// With a shared market: makes sure this node drives it before moving it — taking the driver's lock when no node
    /// holds it (a static market has no driver until someone moves it), from the newest published state — or refuses
    /// (50001) while another node drives it.
    func takeTheMarket() throws {
        guard let log, !log.drives else { return }
        guard try log.tryToDrive() else {
            throw OKXError(.serviceUnavailable, "Service temporarily unavailable: another node drives the market; move it there")
        }
        restore(try log.latest()?.state ?? [:])
    }

    /// Hands the new market to the exchange with the state that produced it, stored in the same transaction as
    /// the interest, funding and expiries of the elapsed time. If that write fails the state stays ahead in
    /// memory only: the next tick's snapshot and state include these moves and cover the same time again.
    func apply() async throws -> TickReport {
        let snapshot = try currentMarket()
        if let log {
            // A shared market: the tick is published; every node applies it (``MarketFollower``), this one at once.
            _ = try log.append(state: persistentState())
            ticks += 1
            return try await follower?.catchUp() ?? TickReport(marketTime: snapshot.valuationTime)
        }
        ticks += 1
        return try await exchange.advance(to: snapshot, settings: persistentState(), sequence: UInt64(ticks))
    }

    /// Follow mode: the upstream's new snapshot becomes the market, at the upstream's time, and the exchange
    /// ticks (interest, funding, expiries, resting fills, risk loop) over the time since the last one.
    @discardableResult
    package func follow(_ snapshot: MarketSnapshot) async throws -> TickReport {
        guard case .follow = mode else { throw OKXError.parameter("the market does not follow an upstream") }
        base = snapshot
        time = snapshot.valuationTime
        return try await apply()
    }

    /// Runs `step()` every `interval` seconds until cancelled.
    package func run(interval: Double) async {
        switch mode {
        case .staticSnapshot, .follow: return
        case .random, .replay: break
        }
        while !Task.isCancelled {
            try? await Task.sleep(nanoseconds: UInt64(interval * 1_000_000_000))
            if Task.isCancelled { break }
            _ = try? await step()
        }
    }

    /// With a shared market (``log``): takes the driver's lock whenever it is free, then, while it holds it, steps
    /// every `interval` seconds from the newest published tick, keeping the lock alive at least every second. A node
    /// that loses the lock (its connection ended) goes back to waiting for it. Runs until cancelled.
    package func drive(interval: Double, logger: Logger) async {
        guard let log else { return }
        switch mode {
        case .staticSnapshot, .follow: return
        case .random, .replay: break
        }
        while !Task.isCancelled {
            if !log.drives {
                guard (try? log.tryToDrive()) == true else {
                    try? await Task.sleep(nanoseconds: 1_000_000_000)
                    continue
                }
                do {
                    let latest = try log.latest()
                    restore(latest?.state ?? [:])
                    logger.info("this node drives the market from tick \(latest?.sequence ?? 0)")
                } catch {
                    logger.warning("taking over the market failed: \(error)")
                    continue
                }
            }
            var waited = 0.0
            while waited < interval, !Task.isCancelled {
                let slice = min(1, interval - waited)
                try? await Task.sleep(nanoseconds: UInt64(slice * 1_000_000_000))
                waited += slice
                if (try? log.keepDriving()) == nil { break }
            }
            if Task.isCancelled || !log.drives { continue }
            do {
                _ = try await step()
            } catch {
                logger.warning("publishing a market tick failed: \(error)")
            }
        }
    }

    // Deterministic random numbers (SplitMix64), so a seed reproduces the path.
    func nextRandom() -> UInt64 {
        randomState &+= 0x9E37_79B9_7F4A_7C15
        var z = randomState
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    func uniform() -> Double { Double(nextRandom() >> 11) / Double(UInt64(1) << 53) }

    func normal() -> Double {
        let u1 = max(uniform(), 1e-300)
        let u2 = uniform()
        return (-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2)
    }
}
