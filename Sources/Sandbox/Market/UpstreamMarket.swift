import Foundation
import Logging
import MarginEngine
import MarketFeed

/// `pm serve --market-mode follow URL`: the sandbox's marks, indices and volatilities follow an OKX v5 endpoint.
///
/// Every poll asks the upstream for the prices of the sandbox's catalog (``MarketFetcher/fetchPrices(for:)``:
/// mark prices, index tickers, option summaries, spot tickers), assembles a snapshot at the upstream's time
/// and hands it to the simulator, so the exchange ticks as in every mode: interest, funding, expiries,
/// resting fills, re-margining and liquidation. A poll any of whose requests gets no answer, that gives no usable snapshot
/// or goes back in time changes nothing: the market stays frozen at the last upstream snapshot — no price
/// is carried forward under a new time, guessed or moved — and the freeze is logged and published at
/// `GET /api/v5/system/status` as an ongoing disruption until the upstream answers again.
public actor UpstreamMarket {
    /// The upstream, e.g. `https://www.okx.com`.
    package let baseURL: String
    let fetcher: MarketFetcher
    let simulator: MarketSimulator
    let catalog: InstrumentCatalog
    let logger: Logger
    let clock: @Sendable () -> Int64
    /// The freeze in progress: since when (wall ms) and why.
    var frozen: (since: Int64, reason: String)?
    /// Past freezes, newest last (at most ``historyLimit``), for `system/status?state=completed`.
    var history: [(begin: Int64, end: Int64, reason: String)] = []
    static let historyLimit = 50
    /// Instruments the last snapshot left out, so each is logged when it drops out, not on every poll.
    var skipped: Set<String> = []
    package private(set) var polls = 0
    package private(set) var appliedPolls = 0

    package init(
        client: any OKXTransport, simulator: MarketSimulator, catalog: InstrumentCatalog, logger: Logger,
        clock: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }
    ) {
        baseURL = client.baseURL
        fetcher = MarketFetcher(client: client)
        self.simulator = simulator
        self.catalog = catalog
        self.logger = logger
        self.clock = clock
    }

    /// Whether the market is frozen, and why.
    package var freezeReason: String? { frozen?.reason }

    /// One poll: fetch, assemble, tick. Returns whether the market moved to a new upstream snapshot.
    @discardableResult
    package func poll() async -> Bool {
        polls += 1
        let answers = await fetcher.fetchPrices(for: catalog)
        if let failure = answers.problems.first(where: \.unanswered) {
            freeze(failure.description)
            return false
        }
        let assembled = MarketAssembler.assemble(
            answers, source: "OKX v5 REST at \(baseURL), followed by pm serve", knownCatalog: catalog)
        guard let snapshot = assembled.snapshot, assembled.isUsable else {
            freeze("no usable snapshot: \(assembled.problems.prefix(3).map(\.description).joined(separator: "; "))")
            return false
        }
        let current = await simulator.exchange.market
        guard snapshot.valuationTime >= current.valuationTime else {
            freeze("its time \(snapshot.valuationTime.iso8601) is before the market's \(current.valuationTime.iso8601)")
            return false
        }
        // An upstream that has not moved (a static pm serve) costs no tick: the risk loop would find the same.
        let unchanged =
            snapshot.valuationTime == current.valuationTime && snapshot.marks == current.marks && snapshot.indices == current.indices
        if !unchanged {
            do {
                try await simulator.follow(snapshot)
            } catch {
                freeze("the exchange could not tick to its snapshot: \(error)")
                return false
            }
        }
        appliedPolls += 1
        if let ended = frozen {
            let now = clock()
            history.append((ended.since, now, ended.reason))
            if history.count > Self.historyLimit { history.removeFirst(history.count - Self.historyLimit) }
            frozen = nil
            logger.warning("market: \(baseURL) answers again; the market follows it from \(snapshot.valuationTime.iso8601)")
        }
        let nowSkipped = Set(catalog.instruments.map(\.id.rawValue)).subtracting(assembled.catalog.instruments.map(\.id.rawValue))
        for id in nowSkipped.subtracting(skipped).sorted() {
            let reason = assembled.problems.first { $0.subject == id }?.detail ?? "no price from the upstream"
            logger.warning("market: \(id) left out of the followed market: \(reason)")
        }
        skipped = nowSkipped
        return true
    }

    func freeze(_ reason: String) {
        if frozen == nil {
            frozen = (clock(), reason)
            logger.warning("market: frozen — the upstream \(baseURL): \(reason); prices and time stay at the last snapshot")
        }
    }

    /// Polls every `interval` seconds until cancelled.
    package func run(interval: Double) async {
        while !Task.isCancelled {
            try? await Task.sleep(nanoseconds: UInt64(interval * 1_000_000_000))
            if Task.isCancelled { break }
            await poll()
        }
    }

    /// `GET /api/v5/system/status` rows (OKX's fields): the freeze in progress as an `ongoing` system
    /// disruption (`maintType` 3), past ones as `completed`; `state` filters as OKX does (default: scheduled,
    /// ongoing and pre_open).
    package func statusView(state: String?) -> JSONValue {
        var rows: [(state: String, begin: Int64, end: Int64?, reason: String)] = history.map { ("completed", $0.begin, $0.end, $0.reason) }
        if let frozen { rows.append(("ongoing", frozen.since, nil, frozen.reason)) }
        let wanted: Set<String> = state.map { [$0] } ?? ["scheduled", "ongoing", "pre_open"]
        return .array(
            rows.filter { wanted.contains($0.state) }.map { row in
                .object([
                    (
                        "title",
                        .string(
                            "Market data frozen: the upstream \(baseURL) gave no usable market (\(row.reason)); prices are held, none invented"
                        )
                    ),
                    ("state", .string(row.state)), ("begin", .string(String(row.begin))),
                    ("end", .string(row.end.map { String($0) } ?? "")),
                    ("preOpenBegin", .string("")), ("href", .string("")), ("serviceType", .string("99")), ("system", .string("unified")),
                    ("scheDesc", .string("")), ("maintType", .string("3")), ("env", .string("1")),
                ])
            })
    }
}
