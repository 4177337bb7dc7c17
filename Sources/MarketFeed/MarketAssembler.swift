import MarginEngine

/// What an OKX v5 upstream answered, endpoint by endpoint, before any of it is trusted: the `data` rows of
/// each response, and the requests that gave nothing.
public struct UpstreamAnswers: Sendable {
    /// `public/instruments` rows of every type asked for.
    public var instruments: [JSONValue] = []
    /// `public/mark-price` rows (`instId`, `markPx`, `ts`).
    public var markPrices: [JSONValue] = []
    /// `market/tickers?instType=SPOT` rows (`instId`, `last`): an index of last resort for a spot pair.
    public var spotTickers: [JSONValue] = []
    /// `market/index-tickers` rows (`instId` = the index pair, `idxPx`, `ts`).
    public var indexTickers: [JSONValue] = []
    /// `public/opt-summary` rows (`instId`, `markVol`, `fwdPx`).
    public var optionSummaries: [JSONValue] = []
    /// `public/funding-rate` rows (`instId`, `fundingRate`).
    public var fundingRates: [JSONValue] = []
    /// Whether funding rates were asked for (their absence is then worth naming).
    public var fundingRatesRequested = false
    /// Requests that failed, each naming its endpoint.
    public var problems: [FeedProblem] = []

    public init() {}
}

/// A market snapshot and instrument catalog built from an upstream's answers, with everything that could
/// not be used named.
public struct AssembledMarket: Sendable {
    /// The catalog entries kept, as the upstream gave them, sorted by `instId`.
    public var catalogEntries: [JSONObject]
    public var catalog: InstrumentCatalog
    /// The validated snapshot; nil when the upstream gave no time or nothing that validates.
    public var snapshot: MarketSnapshot?
    /// The snapshot in the engine's file format (docs/methodology/01-instruments-market.md §1.2), nil with
    /// ``snapshot``.
    public var snapshotDocument: JSONValue?
    /// Everything missing or skipped, in the order found.
    public var problems: [FeedProblem]

    /// The catalog in the schema of OKX `GET /api/v5/public/instruments` (the whole response).
    public var catalogDocument: JSONValue {
        .object([("code", .string("0")), ("msg", .string("")), ("data", .array(catalogEntries.map(JSONValue.object)))])
    }

    /// Whether anything can be margined or traded with it: a snapshot with at least one index and a catalog
    /// with at least one instrument priced by it.
    public var isUsable: Bool {
        guard let snapshot else { return false }
        return !snapshot.indices.isEmpty && !catalogEntries.isEmpty
    }
}

/// Turns OKX v5 answers into a catalog and a snapshot that pass the engine's validation
/// (docs/methodology/01-instruments-market.md §1.2): prices within bounds, a volatility or mark for every option,
/// expiries after the snapshot time. What fails is reported per instrument and left out; nothing is invented (no price
/// is carried over, guessed or defaulted). Pure: no I/O, no clock.
///
/// - Snapshot time: the latest `ts` of the mark prices (else of the indices).
/// - Indices: `market/index-tickers` `idxPx` by pair. A spot pair with no index from which its price can
///   be derived gets its `SPOT` ticker's `last` as the pair's index, listed in `representative` and named.
/// - Perpetuals and futures: `markPx`; perpetuals also the published `fundingRate` when asked for.
/// - Options: `markPx` (coins per coin) from `public/mark-price`, `markVol` and `fwdPx` from
///   `public/opt-summary`; with no `markVol` the engine implies the volatility from `markPx`.
public enum MarketAssembler {
    /// Assembles `answers`; only instruments and indices of `coins` are kept when given (stablecoin indices
    /// always). With `knownCatalog` the instruments come from it (a follower's polls), else from the answers.
    public static func assemble(
        _ answers: UpstreamAnswers, coins: Set<String>? = nil, source: String, knownCatalog: InstrumentCatalog? = nil
    ) -> AssembledMarket {
        var problems = answers.problems
        func wanted(_ coin: String) -> Bool { coins.map { $0.contains(coin) } ?? true }

        // Catalog candidates, each entry validated on its own so one bad entry costs only itself.
        var candidates: [(instrument: Instrument, entry: JSONObject)] = []
        var seen = Set<String>()
        if let knownCatalog {
            for instrument in knownCatalog.instruments where wanted(instrument.underlying) {
                candidates.append((instrument, instrument.catalogEntry))
            }
        } else {
            for (offset, row) in answers.instruments.enumerated() {
                guard case .object(let entry) = row, case .string(let id)? = entry["instId"], !id.isEmpty else {
                    problems.append(FeedProblem("public/instruments data[\(offset)]", "an entry without an instId; skipped"))
                    continue
                }
                let coin = InstrumentID(id)?.baseCurrency ?? String(id.prefix { $0 != "-" })
                guard wanted(coin) else { continue }
                if case .string(let state)? = entry["state"], state != "live" {
                    problems.append(FeedProblem(id, "state \(state), not live; skipped"))
                    continue
                }
                let instrument: Instrument
                do {
                    guard let parsed = try InstrumentCatalog(json: .array([row])).instruments.first else { continue }
                    instrument = parsed
                } catch {
                    problems.append(FeedProblem(id, "\(error.description); skipped"))
                    continue
                }
                guard seen.insert(id).inserted else {
                    problems.append(FeedProblem(id, "listed twice by public/instruments; the first entry is kept"))
                    continue
                }
                candidates.append((instrument, entry))
            }
        }

        // Indices, each a positive price within the engine's bounds.
        var indices: [String: Double] = [:]
        var representative: [String] = []
        var indexTimes: [Int64] = []
        for row in answers.indexTickers {
            guard case .object(let entry) = row, let pair = text(entry["instId"]) else { continue }
            let parts = pair.split(separator: "-").map(String.init)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty, parts[0] != parts[1] else {
                problems.append(FeedProblem(pair, "market/index-tickers gave an index that is not a pair like BTC-USD; skipped"))
                continue
            }
            guard wanted(parts[0]) || MarketSnapshot.stablecoins.contains(parts[0]), indices[pair] == nil else { continue }
            guard let priceText = text(entry["idxPx"]) else {
                problems.append(FeedProblem(pair, "no idxPx in market/index-tickers; skipped"))
                continue
            }
            guard let price = Double(priceText), MarketSnapshot.priceRange.contains(price) else {
                problems.append(FeedProblem(pair, "idxPx \"\(priceText)\" is not a price between 1e-15 and 1e15; skipped"))
                continue
            }
            indices[pair] = price
            if let time = text(entry["ts"]).flatMap(Int64.init), time > 0 { indexTimes.append(time) }
        }

        // Marks, volatilities, forwards and funding rates by instrument id (first answer wins).
        var marks: [String: (text: String, time: Int64?)] = [:]
        for row in answers.markPrices {
            guard case .object(let entry) = row, let id = text(entry["instId"]), marks[id] == nil, let mark = text(entry["markPx"]) else {
                continue
            }
            marks[id] = (mark, text(entry["ts"]).flatMap(Int64.init))
        }
        var summaries: [String: (markVol: String?, fwdPx: String?)] = [:]
        for row in answers.optionSummaries {
            guard case .object(let entry) = row, let id = text(entry["instId"]), summaries[id] == nil else { continue }
            summaries[id] = (text(entry["markVol"]), text(entry["fwdPx"]))
        }
        var fundingRates: [String: String] = [:]
        for row in answers.fundingRates {
            guard case .object(let entry) = row, let id = text(entry["instId"]), let rate = text(entry["fundingRate"]) else { continue }
            fundingRates[id] = fundingRates[id] ?? rate
        }
        var tickers: [String: String] = [:]
        for row in answers.spotTickers {
            guard case .object(let entry) = row, let id = text(entry["instId"]), let last = text(entry["last"]) else { continue }
            tickers[id] = tickers[id] ?? last
        }

        // The snapshot's instant: the latest mark time of the instruments kept, else of the indices.
        let keptIDs = Set(candidates.map(\.instrument.id.rawValue))
        let markTimes = marks.filter { keptIDs.contains($0.key) }.compactMap(\.value.time).filter { $0 > 0 }
        guard let time = markTimes.max() ?? indexTimes.max() else {
            problems.append(FeedProblem("ts", "neither public/mark-price nor market/index-tickers gave a time; no snapshot"))
            return AssembledMarket(
                catalogEntries: [], catalog: InstrumentCatalog(instruments: []), snapshot: nil, snapshotDocument: nil, problems: problems)
        }
        let valuationTime = UnixMillis(time)

        // Spot pairs whose price no index gives: the SPOT ticker's last trade, named as representative.
        if let indexOnly = try? MarketSnapshot(valuationTime: valuationTime, indices: indices, marks: [:]) {
            for (instrument, _) in candidates where instrument.kind == .spot {
                let pair = instrument.id.rawValue
                guard (try? indexOnly.index(base: instrument.underlying, quote: instrument.quoteCurrency)) == nil, indices[pair] == nil,
                    let last = tickers[pair], let price = Double(last), MarketSnapshot.priceRange.contains(price)
                else { continue }
                indices[pair] = price
                representative.append(pair)
                problems.append(
                    FeedProblem(
                        pair,
                        "no index in market/index-tickers; the SPOT ticker's last price \(last) is written as its index and listed as representative"
                    ))
            }
        }

        // Each derivative's quote, validated alone against the indices (bounds, expiry, a resolvable market).
        var quotes: [String: MarkQuote] = [:]
        var derivatives: [Instrument] = []
        for (instrument, _) in candidates.sorted(by: { $0.instrument.id < $1.instrument.id }) where instrument.isDerivative {
            let id = instrument.id.rawValue
            if let expiry = instrument.expiry, expiry <= valuationTime {
                problems.append(FeedProblem(id, "expired at \(expiry.iso8601), before the snapshot time \(valuationTime.iso8601); skipped"))
                continue
            }
            var quote = MarkQuote()
            var missing: [String] = []
            /// A numeric field: `.some(nil)` when absent, `.some(value)` when a finite number, and nil (after naming
            /// it) when present but not a number, which skips the instrument.
            func number(_ name: String, _ value: String?) -> Double?? {
                guard let value else { return .some(nil) }
                guard let parsed = Double(value), parsed.isFinite else {
                    problems.append(FeedProblem(id, "\(name) \"\(value)\" is not a number; skipped"))
                    return nil
                }
                return .some(parsed)
            }
            guard let markPrice = number("markPx", marks[id]?.text) else { continue }
            quote.markPrice = markPrice
            switch instrument.kind {
            case .option:
                guard let volatility = number("markVol", summaries[id]?.markVol), let forward = number("fwdPx", summaries[id]?.fwdPx) else {
                    continue
                }
                quote.markVolatility = volatility
                quote.forwardUSD = forward
                if volatility == nil, markPrice == nil {
                    problems.append(FeedProblem(id, "neither markPx (public/mark-price) nor markVol (public/opt-summary); skipped"))
                    continue
                }
                if volatility == nil { missing.append("no markVol in public/opt-summary: the volatility is implied from markPx") }
                if forward == nil, volatility != nil {
                    missing.append("no fwdPx in public/opt-summary: the forward is the same-expiry future's mark or the index")
                }
            default:
                guard markPrice != nil else {
                    problems.append(FeedProblem(id, "no markPx in public/mark-price; skipped"))
                    continue
                }
                if instrument.kind == .perpetual {
                    guard let rate = number("fundingRate", fundingRates[id]) else { continue }
                    quote.fundingRate = rate
                    if rate == nil, answers.fundingRatesRequested {
                        missing.append("no fundingRate in public/funding-rate: funding is derived from the premium")
                    }
                }
            }
            do {
                let alone = try MarketSnapshot(valuationTime: valuationTime, indices: indices, marks: [id: quote])
                _ = try alone.market(for: instrument, path: id)
            } catch {
                problems.append(FeedProblem(id, "\(error.description); skipped"))
                continue
            }
            problems += missing.map { FeedProblem(id, $0) }
            quotes[id] = quote
            derivatives.append(instrument)
        }

        // The whole snapshot; an option's forward may now come from a future, so each market is resolved again.
        var snapshot: MarketSnapshot
        do {
            snapshot = try MarketSnapshot(
                valuationTime: valuationTime, indices: indices, marks: quotes, source: source, representative: representative.sorted())
            var dropped = false
            for instrument in derivatives {
                do { _ = try snapshot.market(for: instrument, path: instrument.id.rawValue) } catch {
                    problems.append(FeedProblem(instrument.id.rawValue, "\(error.description); skipped"))
                    quotes[instrument.id.rawValue] = nil
                    dropped = true
                }
            }
            if dropped {
                snapshot = try MarketSnapshot(
                    valuationTime: valuationTime, indices: indices, marks: quotes, source: source, representative: representative.sorted())
            }
        } catch {
            // Unreachable after the checks above, but never worth a crash: report it and give no snapshot.
            problems.append(FeedProblem("snapshot", "\(error.description); no snapshot"))
            return AssembledMarket(
                catalogEntries: [], catalog: InstrumentCatalog(instruments: []), snapshot: nil, snapshotDocument: nil, problems: problems)
        }

        // The catalog: every derivative with a quote, every spot pair the indices price.
        var kept: [(Instrument, JSONObject)] = []
        for (instrument, entry) in candidates.sorted(by: { $0.instrument.id < $1.instrument.id }) {
            if instrument.isDerivative {
                if quotes[instrument.id.rawValue] != nil { kept.append((instrument, entry)) }
            } else if (try? snapshot.market(for: instrument, path: instrument.id.rawValue)) != nil {
                kept.append((instrument, entry))
            } else {
                problems.append(
                    FeedProblem(
                        instrument.id.rawValue,
                        "no index prices \(instrument.underlying) in \(instrument.quoteCurrency) and USD (market/index-tickers, market/tickers); skipped"
                    ))
            }
        }
        return AssembledMarket(
            catalogEntries: kept.map(\.1), catalog: InstrumentCatalog(instruments: kept.map(\.0)), snapshot: snapshot,
            snapshotDocument: document(snapshot), problems: problems)
    }

    /// A snapshot in the engine's file format (docs/methodology/01-instruments-market.md §1.2), every number as a
    /// decimal string that reads back to the same `Double`.
    public static func document(_ snapshot: MarketSnapshot) -> JSONValue {
        let marks: [JSONValue] = snapshot.marks.keys.sorted().compactMap { id in
            guard let quote = snapshot.marks[id] else { return nil }
            var fields: [(String, JSONValue)] = [("instId", .string(id))]
            if let value = quote.markPrice { fields.append(("markPx", .decimal(value))) }
            if let value = quote.markVolatility { fields.append(("markVol", .decimal(value))) }
            if let value = quote.forwardUSD { fields.append(("fwdPx", .decimal(value))) }
            if let value = quote.fundingRate { fields.append(("fundingRate", .decimal(value))) }
            return .object(fields)
        }
        return .object([
            ("ts", .string(String(snapshot.valuationTime.rawValue))),
            ("source", .string(snapshot.source)),
            ("indices", .object(snapshot.indices.keys.sorted().map { ($0, .decimal(snapshot.indices[$0] ?? 0)) })),
            ("rates", .object([("USD", .decimal(snapshot.usdRate))])),
            ("marks", .array(marks)),
            ("representative", .array(snapshot.representative.map(JSONValue.string))),
        ])
    }

    /// A field's text: a non-empty string, or a number's literal (OKX sends strings; `""` means absent).
    static func text(_ value: JSONValue?) -> String? {
        switch value {
        case .string(let text)?: text.isEmpty ? nil : text
        case .number(let literal)?: literal
        default: nil
        }
    }
}
