import MarginEngine

/// Fetches what a snapshot needs from an OKX v5 upstream, one endpoint after another under the
/// ``RequestPacer``, and records every request that failed instead of giving up.
///
/// Endpoints (all public, all GET under `/api/v5`): `public/instruments` (SPOT, SWAP, FUTURES, and OPTION per
/// family), `public/underlying?instType=OPTION` (the option families), `public/mark-price` (SWAP, FUTURES,
/// OPTION per family), `market/tickers?instType=SPOT`, `market/index-tickers` (quoteCcy USD, USDT, USDC, and
/// the USDT-USD and USDC-USD indices by id), `public/opt-summary` per family, `public/funding-rate`
/// (`instId=ANY`, else one request per perpetual).
public struct MarketFetcher: Sendable {
    public let client: any OKXTransport
    /// Told each request before it is sent (`GET /api/v5/public/mark-price?instType=SWAP`), for a progress line.
    public let progress: @Sendable (_ requestNumber: Int, _ request: String) -> Void

    public init(client: any OKXTransport, progress: @escaping @Sendable (Int, String) -> Void = { _, _ in }) {
        self.client = client
        self.progress = progress
    }

    /// Everything for a new snapshot and catalog: instruments, prices, indices, option data and (when
    /// asked) funding rates, for `coins` (all when nil).
    public func fetchAll(coins: Set<String>?, fundingRates: Bool) async -> UpstreamAnswers {
        var session = Session(fetcher: self, unansweredLimit: 2)
        for type in ["SPOT", "SWAP", "FUTURES"] {
            session.answers.instruments += await session.get("/api/v5/public/instruments", [("instType", type)])
        }
        let families = await session.optionFamilies(coins: coins)
        for family in families {
            session.answers.instruments += await session.get(
                "/api/v5/public/instruments", [("instType", "OPTION"), ("instFamily", family)])
        }
        await session.prices(families: families, futures: true, swaps: true, spot: true)
        if fundingRates {
            session.answers.fundingRatesRequested = true
            let perpetuals = session.answers.instruments.compactMap { row -> String? in
                guard case .object(let entry) = row, entry["instType"] == .string("SWAP"), let id = MarketAssembler.text(entry["instId"]),
                    let parsed = InstrumentID(id), coins.map({ $0.contains(parsed.baseCurrency) }) ?? true
                else { return nil }
                return id
            }
            await session.fundingRates(perpetuals: perpetuals.sorted())
        }
        return session.answers
    }

    /// The prices of a known catalog (a follower's poll): mark prices, indices, option data and spot tickers,
    /// no instruments and no funding rates.
    /// The first request that gets no answer ends the poll (the rest are not sent).
    public func fetchPrices(for catalog: InstrumentCatalog) async -> UpstreamAnswers {
        var session = Session(fetcher: self, unansweredLimit: 1)
        let kinds = Set(catalog.instruments.map(\.kind))
        let families = Set(catalog.instruments.filter { $0.kind == .option }.map(\.id.family)).sorted()
        await session.prices(
            families: families, futures: kinds.contains(.future), swaps: kinds.contains(.perpetual), spot: kinds.contains(.spot))
        return session.answers
    }

    /// One run of requests: the answers so far and the request count.
    struct Session {
        let fetcher: MarketFetcher
        /// After this many requests in a row got no answer the upstream counts as gone: the rest are not sent
        /// (each would wait for its timeout) and are named instead.
        let unansweredLimit: Int
        var answers = UpstreamAnswers()
        var requests = 0
        var unansweredInARow = 0

        /// The rows of one GET, or none with the failure recorded.
        mutating func get(_ path: String, _ query: [(String, String)]) async -> [JSONValue] {
            guard unansweredInARow < unansweredLimit else {
                answers.problems.append(
                    FeedProblem(
                        "GET \(OKXEnvelope.target(path, query))", "not asked: the upstream stopped answering", unanswered: true))
                return []
            }
            requests += 1
            fetcher.progress(requests, "GET \(OKXEnvelope.target(path, query))")
            do {
                let rows = try await fetcher.client.get(path, query)
                unansweredInARow = 0
                return rows
            } catch {
                unansweredInARow = error.isUnanswered ? unansweredInARow + 1 : 0
                answers.problems.append(FeedProblem("GET \(OKXEnvelope.target(path, query))", error.reason, unanswered: error.isUnanswered))
                return []
            }
        }

        /// Coin-margined option families (`BTC-USD`) of `coins`, from `public/underlying`.
        mutating func optionFamilies(coins: Set<String>?) async -> [String] {
            let rows = await get("/api/v5/public/underlying", [("instType", "OPTION")])
            var listed: [String] = []
            for row in rows {
                if case .array(let names) = row { listed += names.compactMap { MarketAssembler.text($0) } }
                if let name = MarketAssembler.text(row) { listed.append(name) }
            }
            if listed.isEmpty, let coins, answers.problems.contains(where: { $0.subject.contains("/public/underlying") }) {
                // The list is unavailable: ask for the coins' families directly (an unknown one answers empty).
                listed = coins.sorted().map { "\($0)-USD" }
            }
            var families: [String] = []
            for family in Set(listed).sorted() {
                let parts = family.split(separator: "-").map(String.init)
                guard parts.count == 2, parts[1] == "USD" else {
                    if coins.map({ $0.contains(parts.first ?? "") }) ?? true {
                        answers.problems.append(
                            FeedProblem(family, "option family the engine does not price (coin-margined COIN-USD only); skipped"))
                    }
                    continue
                }
                if coins.map({ $0.contains(parts[0]) }) ?? true { families.append(family) }
            }
            return families
        }

        /// Spot tickers, indices (with both stablecoins), option summaries and, last, mark prices: the snapshot's
        /// time is its marks' latest, so nothing in it is newer than its time when the upstream moves meanwhile.
        mutating func prices(families: [String], futures: Bool, swaps: Bool, spot: Bool) async {
            if spot { answers.spotTickers += await get("/api/v5/market/tickers", [("instType", "SPOT")]) }
            for quote in ["USD", "USDT", "USDC"] {
                answers.indexTickers += await get("/api/v5/market/index-tickers", [("quoteCcy", quote)])
            }
            let listed = Set(
                answers.indexTickers.compactMap { row -> String? in
                    guard case .object(let entry) = row else { return nil }
                    return MarketAssembler.text(entry["instId"])
                })
            for stable in ["USDT-USD", "USDC-USD"] where !listed.contains(stable) {
                let rows = await get("/api/v5/market/index-tickers", [("instId", stable)])
                if rows.isEmpty, !answers.problems.contains(where: { $0.subject.hasSuffix("instId=\(stable)") }) {
                    answers.problems.append(FeedProblem(stable, "market/index-tickers has no such index"))
                }
                answers.indexTickers += rows
            }
            for family in families {
                answers.optionSummaries += await get("/api/v5/public/opt-summary", [("instFamily", family)])
            }
            if swaps { answers.markPrices += await get("/api/v5/public/mark-price", [("instType", "SWAP")]) }
            if futures { answers.markPrices += await get("/api/v5/public/mark-price", [("instType", "FUTURES")]) }
            for family in families {
                answers.markPrices += await get("/api/v5/public/mark-price", [("instType", "OPTION"), ("instFamily", family)])
            }
        }

        /// Funding rates: all at once with `instId=ANY` where the upstream offers it, else one per perpetual.
        mutating func fundingRates(perpetuals: [String]) async {
            guard !perpetuals.isEmpty, unansweredInARow < unansweredLimit else { return }
            requests += 1
            fetcher.progress(requests, "GET /api/v5/public/funding-rate?instId=ANY")
            if let rows = try? await fetcher.client.get("/api/v5/public/funding-rate", [("instId", "ANY")]), !rows.isEmpty {
                answers.fundingRates += rows
                return
            }
            for id in perpetuals {
                answers.fundingRates += await get("/api/v5/public/funding-rate", [("instId", id)])
            }
        }
    }
}
