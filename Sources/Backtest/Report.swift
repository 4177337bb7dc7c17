import Foundation
import MarginEngine

/// The backtest's results as JSON (the report's data), as tables for a terminal, and as a self-contained HTML page.
public enum BacktestReport {
    /// Points on the report's time axis at most: longer paths are bucketed (sums of counts, the last fund balance,
    /// the lowest of each ratio percentile, the close and range of each price).
    public static let maximumPoints = 1_500
    /// Breaches listed per run.
    public static let listedBreaches = 25

    // MARK: - JSON

    /// Every figure of the result; `runtimeSeconds` is the one field that changes from run to run.
    public static func json(_ result: BacktestResult) -> JSONValue {
        let configuration = result.configuration
        let path = result.path
        var members: [(String, JSONValue)] = [
            ("tool", .string("pm backtest")),
            ("mode", .string(configuration.mode.rawValue)),
            ("path", pathJSON(path)),
            ("horizonMoves", horizonMovesJSON(result)),
            (
                "market",
                .object([
                    ("name", .string(configuration.marketName)),
                    ("ts", .string(configuration.market.valuationTime.iso8601)),
                    (
                        "note",
                        .string(
                            "the path's moves are applied to this snapshot (each coin's index × its close over its first close); market time starts at its ts"
                        )
                    ),
                ])
            ),
            (
                "volatility",
                .object([
                    ("rule", .string(configuration.volatility.argument)), ("description", .string(configuration.volatility.description)),
                ])
            ),
            ("horizonSeconds", number(Double(configuration.horizonMilliseconds) / 1000)),
            ("population", populationJSON(result.population)),
            ("universe", .array(result.universe.map { .string($0) })),
            ("runs", .array(result.runs.map { runJSON($0, result: result) })),
            ("series", seriesJSON(result)),
            ("runtimeSeconds", number((result.elapsedSeconds * 10).rounded() / 10)),
        ]
        if configuration.mode == .windows {
            members.insert(
                (
                    "windows",
                    .object([
                        ("scored", .number(String(result.windowStarts.count))),
                        (
                            "note",
                            .string(
                                "every window [t, t + horizon] of the series whose end instant exists; each window's move is applied to the books as opened at the base market"
                            )
                        ),
                    ])
                ), at: 3)
        }
        return .object(members)
    }

    static func number(_ value: Double?) -> JSONValue {
        guard let value, value.isFinite else { return .null }
        return .number(DecimalText.format(value))
    }

    static func usd(_ value: Double) -> JSONValue { number((value * 100).rounded() / 100) }

    static func pathJSON(_ path: AlignedPath) -> JSONValue {
        .object([
            ("coins", .array(path.coins.map { .string($0) })),
            ("start", .string(path.times[0].iso8601)),
            ("end", .string(path.times[path.times.count - 1].iso8601)),
            ("steps", .number(String(path.steps))),
            (
                "files",
                .array(
                    path.sources.map { source in
                        .object([
                            ("coin", .string(source.coin)),
                            ("file", .string(source.file)),
                            ("rows", .number(String(source.rows))),
                            ("rowsDropped", .number(String(source.droppedRows))),
                            ("medianStepSeconds", .number(String(source.medianStepMilliseconds / 1000))),
                            ("lowest", number(source.lowestPrice)),
                            ("highest", number(source.highestPrice)),
                            ("first", number(path.closes[path.coins.firstIndex(of: source.coin) ?? 0][0])),
                            ("last", number(path.closes[path.coins.firstIndex(of: source.coin) ?? 0][path.times.count - 1])),
                        ])
                    })
            ),
        ])
    }

    /// Each coin's moves over the horizon next to the largest spot move each parameter set's MR1 and MR6 apply
    /// to it: a linear book loses its MMR's worth at about `max(MR1 move, MR6 factor × MR6 move)`.
    static func horizonMovesJSON(_ result: BacktestResult) -> JSONValue {
        .array(
            result.path.horizonMoves(result.configuration.horizonMilliseconds).map { moves in
                .object([
                    ("coin", .string(moves.coin)),
                    ("windows", .number(String(moves.windows))),
                    ("worstFall", number(rounded(moves.worstFall))),
                    ("fall99_7", number(rounded(moves.fall99point7))),
                    ("fall99", number(rounded(moves.fall99))),
                    ("rise99", number(rounded(moves.rise99))),
                    ("rise99_7", number(rounded(moves.rise99point7))),
                    ("largestRise", number(rounded(moves.largestRise))),
                    (
                        "shocks",
                        .array(
                            result.configuration.parameterSets.map { parameters in
                                guard !MarketSnapshot.stablecoins.contains(moves.coin) else {
                                    return .object([
                                        ("paramsId", .string(parameters.id)),
                                        ("collateralRate", number(parameters.collateralTiers[moves.coin]?.first?.rate)),
                                    ])
                                }
                                let tier = parameters.derivativeParameters(for: moves.coin)
                                return .object([
                                    ("paramsId", .string(parameters.id)),
                                    ("mr1LargestMove", number(tier.mr1SpotMoves.max())),
                                    ("mr6ExtremeMove", number(tier.mr6ExtremeMove)),
                                    ("mr6LossFactor", number(tier.mr6LossFactor)),
                                ])
                            })
                    ),
                ])
            })
    }

    static func rounded(_ value: Double) -> Double { (value * 1_000_000).rounded() / 1_000_000 }

    static func populationJSON(_ population: Population) -> JSONValue {
        var kinds: [String: Int] = [:]
        for account in population.accounts { kinds[account.kindName, default: 0] += 1 }
        let leverages = population.accounts.compactMap { $0.kind == .optionBuying ? nil : $0.leverageDrawn }.sorted()
        let scaled = population.accounts.filter { $0.scaledDown > 0 }.count
        return .object([
            ("summary", .string(population.summary)),
            ("accounts", .number(String(population.accounts.count))),
            ("byKind", .object(kinds.keys.sorted().map { ($0, .number(String(kinds[$0] ?? 0))) })),
            ("leverageDrawnMedian", number(leverages.isEmpty ? nil : leverages[leverages.count / 2])),
            ("leverageDrawnP90", number(leverages.isEmpty ? nil : leverages[min(leverages.count - 1, leverages.count * 9 / 10)])),
            ("scaledToFitIMR", .number(String(scaled))),
        ])
    }

    static func runJSON(_ run: BacktestRun, result: BacktestResult) -> JSONValue {
        var members: [(String, JSONValue)] = [
            ("label", .string(run.label)),
            ("paramsId", .string(run.parametersID)),
            ("mode", .string(run.modeName)),
            ("accountsOpened", .number(String(run.accountsOpened))),
            ("openingRefusals", .number(String(run.openingRefusals.count))),
            ("openingRefusalExamples", .array(run.openingRefusals.prefix(5).map { .string($0) })),
        ]
        if let outcomes = run.outcomes {
            members.append(
                (
                    "outcomes",
                    .object([
                        ("liquidatedAccounts", .number(String(outcomes.liquidatedAccounts))),
                        ("partiallyLiquidated", .number(String(outcomes.partiallyLiquidatedAccounts))),
                        ("fullyLiquidated", .number(String(outcomes.fullyLiquidatedAccounts))),
                        ("liquidationEvents", .number(String(outcomes.liquidationEvents))),
                        ("marginCalls", .number(String(outcomes.marginCalls))),
                        ("marginCallRatio", number(Outcomes.marginCallRatio)),
                        ("badDebtUSD", usd(outcomes.badDebtUSD)),
                        ("accountsWithBadDebt", .number(String(outcomes.accountsWithBadDebt))),
                        ("insuranceFundDrawUSD", usd(outcomes.badDebtUSD)),
                        ("insuranceFundIncomeUSD", usd(outcomes.fundIncomeUSD)),
                        ("insuranceFundEndUSD", usd(outcomes.fundEndUSD)),
                        ("insuranceFundLowestUSD", usd(outcomes.fundLowestUSD)),
                        ("lowestMarginRatio", number(outcomes.lowestRatio.map { ($0 * 10_000).rounded() / 10_000 })),
                        ("accountStepsLeftAtOrBelowTrigger", .number(String(outcomes.leftAtOrBelowTrigger))),
                        (
                            "liquidatedByKind",
                            .object(
                                outcomes.liquidatedByKind.keys.sorted().map { ($0, .number(String(outcomes.liquidatedByKind[$0] ?? 0))) })
                        ),
                        (
                            "accountsByKind",
                            .object(outcomes.accountsByKind.keys.sorted().map { ($0, .number(String(outcomes.accountsByKind[$0] ?? 0))) })
                        ),
                    ])
                ))
        }
        let coverage = run.coverage
        members.append(
            (
                "coverage",
                .object([
                    ("observations", .number(String(coverage.observations))),
                    ("breaches", .number(String(coverage.breaches))),
                    ("coverage", number(coverage.coverage.map { ($0 * 1_000_000).rounded() / 1_000_000 })),
                    ("meets99", coverage.coverage.map { .bool($0 >= 0.99) } ?? .null),
                    ("meets99_7", coverage.coverage.map { .bool($0 >= 0.997) } ?? .null),
                    ("imrBreaches", .number(String(coverage.imrBreaches))),
                    ("imrCoverage", number(coverage.imrCoverage.map { ($0 * 1_000_000).rounded() / 1_000_000 })),
                    ("skippedWindows", .number(String(coverage.skippedWindows))),
                    ("worstShortfallUSD", usd(coverage.worstShortfallUSD)),
                    ("totalShortfallUSD", usd(coverage.totalShortfallUSD)),
                    (
                        "byKind",
                        .array(
                            coverage.observationsByKind.keys.sorted().map { kind in
                                let observed = coverage.observationsByKind[kind] ?? 0
                                let breached = coverage.breachesByKind[kind] ?? 0
                                return .object([
                                    ("kind", .string(kind)), ("observations", .number(String(observed))),
                                    ("breaches", .number(String(breached))),
                                    (
                                        "coverage",
                                        number(
                                            observed > 0
                                                ? ((1 - Double(breached) / Double(observed)) * 1_000_000).rounded() / 1_000_000 : nil)
                                    ),
                                ])
                            })
                    ),
                    (
                        "byBinding",
                        .array(
                            coverage.breachesByBinding.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map {
                                .object([("component", .string($0.key)), ("breaches", .number(String($0.value)))])
                            })
                    ),
                    (
                        "worst",
                        .array(
                            coverage.worst.prefix(listedBreaches).map { breach in
                                let spec = result.population.accounts[breach.account]
                                return .object([
                                    ("account", .string(spec.source)),
                                    ("kind", .string(spec.kindName)),
                                    ("pathStart", .string(breach.pathStart.iso8601)),
                                    ("marketStart", .string(breach.start.iso8601)),
                                    ("lossUSD", usd(breach.lossUSD)),
                                    ("mmrUSD", usd(breach.mmrUSD)),
                                    ("shortfallUSD", usd(breach.shortfallUSD)),
                                    ("binding", .string(breach.binding)),
                                ])
                            })
                    ),
                ])
            ))
        return .object(members)
    }

    /// Bucket boundaries: `count` points over `0..<total` as half-open index ranges.
    static func buckets(_ total: Int) -> [Range<Int>] {
        guard total > 0 else { return [] }
        let count = min(total, maximumPoints)
        return (0..<count).map { bucket in (bucket * total / count)..<((bucket + 1) * total / count) }
    }

    static func seriesJSON(_ result: BacktestResult) -> JSONValue {
        let path = result.path
        // The axis: every step (replay) or every window start (windows).
        let axis: [Int] = result.configuration.mode == .replay ? Array(0..<path.times.count) : result.windowStarts
        let ranges = buckets(axis.count)
        var members: [(String, JSONValue)] = [
            ("points", .number(String(ranges.count))),
            ("time", .array(ranges.map { .string(path.times[axis[$0.upperBound - 1]].iso8601) })),
        ]
        var prices: [(String, JSONValue)] = []
        for (position, coin) in path.coins.enumerated() {
            let closes = path.closes[position]
            prices.append(
                (
                    coin,
                    .object([
                        ("close", .array(ranges.map { number(closes[axis[$0.upperBound - 1]]) })),
                        ("low", .array(ranges.map { range in number(range.map { closes[axis[$0]] }.min()) })),
                        ("high", .array(ranges.map { range in number(range.map { closes[axis[$0]] }.max()) })),
                    ])
                ))
        }
        members.append(("prices", .object(prices)))
        var runs: [JSONValue] = []
        for run in result.runs {
            var series: [(String, JSONValue)] = [("label", .string(run.label))]
            let breaches = run.coverage.breachesByStep
            series.append(
                (
                    "breaches",
                    .array(ranges.map { range in .number(String(range.reduce(0) { $0 + ($1 < breaches.count ? breaches[$1] : 0) })) })
                ))
            if let outcomes = run.outcomes {
                series.append(
                    (
                        "liquidations",
                        .array(ranges.map { range in .number(String(range.reduce(0) { $0 + outcomes.liquidationsByStep[$1] })) })
                    ))
                series.append(
                    (
                        "marginCallAccounts",
                        .array(ranges.map { range in .number(String(range.map { outcomes.marginCallAccountsByStep[$0] }.max() ?? 0)) })
                    ))
                series.append(("fundUSD", .array(ranges.map { usd(outcomes.fundUSDByStep[$0.upperBound - 1]) })))
                for (position, share) in Outcomes.percentiles.enumerated() {
                    let name = "ratioP\(Int((share * 100).rounded()))"
                    series.append(
                        (
                            name,
                            .array(
                                ranges.map { range in
                                    number(
                                        range.compactMap { step in
                                            outcomes.ratioPercentilesByStep[step].isEmpty
                                                ? nil : outcomes.ratioPercentilesByStep[step][position]
                                        }
                                        .min().map { ($0 * 10_000).rounded() / 10_000 })
                                })
                        ))
                }
            }
            runs.append(.object(series))
        }
        members.append(("runs", .array(runs)))
        return .object(members)
    }

    // MARK: - Tables

    /// The results as plain-text tables (one per path: outcomes, coverage, breaches).
    public static func table(_ result: BacktestResult) -> String {
        let configuration = result.configuration
        let path = result.path
        var lines: [String] = []
        lines.append(
            "pm backtest: \(configuration.mode.rawValue) of \(path.coins.joined(separator: ", ")) from \(path.times[0].iso8601) to \(path.times[path.times.count - 1].iso8601) (\(path.steps) steps)"
        )
        for source in path.sources {
            lines.append(
                "  \(source.coin): \(source.file) (\(source.rows) rows, step \(duration(source.medianStepMilliseconds)), \(source.droppedRows) dropped to align; \(format(path.closes[path.coins.firstIndex(of: source.coin) ?? 0][0])) → \(format(path.closes[path.coins.firstIndex(of: source.coin) ?? 0][path.times.count - 1])), range \(format(source.lowestPrice))–\(format(source.highestPrice)))"
            )
        }
        lines.append(
            "  market: \(configuration.marketName) (\(configuration.market.valuationTime.iso8601)) moved by the path's returns; volatility \(configuration.volatility.description)"
        )
        lines.append("  population: \(result.population.summary)")
        lines.append(
            "  coverage horizon: \(duration(configuration.horizonMilliseconds)); runtime \(String(format: "%.1f", result.elapsedSeconds)) s (measured)"
        )
        if configuration.mode == .windows {
            lines.append("  windows: \(result.windowStarts.count) (every start whose end lies within the series)")
        }
        lines.append("")
        lines.append(
            "Moves over \(duration(configuration.horizonMilliseconds)) (every window of the path) against the spot shocks of each parameter set"
        )
        var moveRows = [
            [
                "coin", "windows", "worst fall", "0.3 % fell below", "1 % fell below", "1 % rose above", "0.3 % rose above", "largest rise",
                "MR1 / MR6 moves",
            ]
        ]
        for moves in path.horizonMoves(configuration.horizonMilliseconds) {
            let shocks = configuration.parameterSets.map { parameters in
                // A stablecoin has no spot shock: its fall is met by its collateral discount (and MR9 for hedges).
                guard !MarketSnapshot.stablecoins.contains(moves.coin) else {
                    let rate = parameters.collateralTiers[moves.coin]?.first?.rate ?? 0
                    return "\(parameters.id): no spot shock; collateral rate \(DecimalText.format(rate))"
                }
                let tier = parameters.derivativeParameters(for: moves.coin)
                let mr1 = String(format: "±%.1f %%", (tier.mr1SpotMoves.max() ?? 0) * 100)
                let mr6 = String(format: "±%.1f %%", tier.mr6ExtremeMove * 100)
                return "\(parameters.id): \(mr1) / \(mr6) × \(DecimalText.format(tier.mr6LossFactor))"
            }.joined(separator: "; ")
            moveRows.append([
                moves.coin, String(moves.windows), signed(moves.worstFall), signed(moves.fall99point7), signed(moves.fall99),
                signed(moves.rise99),
                signed(moves.rise99point7), signed(moves.largestRise), shocks,
            ])
        }
        lines += render(moveRows)
        if configuration.mode == .replay {
            lines.append("")
            lines.append("Outcomes on the exchange core (liquidations, bad debt and the insurance fund in USD)")
            var rows = [
                [
                    "run", "opened", "liquidated", "partial", "full", "margin calls", "bad debt = fund draw", "fund income", "fund end",
                    "fund lowest", "lowest ratio",
                ]
            ]
            for run in result.runs {
                guard let outcomes = run.outcomes else { continue }
                rows.append([
                    run.label, String(run.accountsOpened), String(outcomes.liquidatedAccounts),
                    String(outcomes.partiallyLiquidatedAccounts),
                    String(outcomes.fullyLiquidatedAccounts), String(outcomes.marginCalls), money(outcomes.badDebtUSD),
                    money(outcomes.fundIncomeUSD), money(outcomes.fundEndUSD), money(outcomes.fundLowestUSD),
                    outcomes.lowestRatio.map { String(format: "%.3f", $0) } ?? "",
                ])
            }
            lines += render(rows)
        }
        lines.append("")
        lines.append(
            "Coverage: loss over \(duration(configuration.horizonMilliseconds)) against the MMR held at the start (books held fixed; targets 99 % and 99.7 %)"
        )
        var coverageRows = [
            [
                "run", "observations", "breaches", "coverage", "≥ 99 %", "≥ 99.7 %", "IMR coverage", "worst shortfall USD", "skipped",
                "binding (breaches)",
            ]
        ]
        for run in result.runs {
            let coverage = run.coverage
            let binding = coverage.breachesByBinding.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(3)
                .map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            coverageRows.append([
                run.label, String(coverage.observations), String(coverage.breaches), percent(coverage.coverage),
                coverage.coverage.map { $0 >= 0.99 ? "yes" : "no" } ?? "", coverage.coverage.map { $0 >= 0.997 ? "yes" : "no" } ?? "",
                percent(coverage.imrCoverage), money(coverage.worstShortfallUSD), String(coverage.skippedWindows), binding,
            ])
        }
        lines += render(coverageRows)
        lines.append("")
        lines.append("Coverage by book kind")
        let kinds = Set(result.runs.flatMap { $0.coverage.observationsByKind.keys }).sorted()
        var kindRows = [["kind"] + result.runs.map(\.label)]
        for kind in kinds {
            kindRows.append(
                [kind]
                    + result.runs.map { run in
                        let observed = run.coverage.observationsByKind[kind] ?? 0
                        let breached = run.coverage.breachesByKind[kind] ?? 0
                        return observed == 0 ? "" : "\(percent(1 - Double(breached) / Double(observed))) (\(breached))"
                    })
        }
        lines += render(kindRows)
        for run in result.runs where !run.coverage.worst.isEmpty {
            lines.append("")
            lines.append("Largest breaches, \(run.label)")
            var rows = [["account", "kind", "path time", "loss USD", "MMR USD", "shortfall USD", "binding"]]
            for breach in run.coverage.worst.prefix(10) {
                let spec = result.population.accounts[breach.account]
                rows.append([
                    spec.source, spec.kindName, breach.pathStart.iso8601, money(breach.lossUSD), money(breach.mmrUSD),
                    money(breach.shortfallUSD), breach.binding,
                ])
            }
            lines += render(rows)
        }
        let refusals = result.runs.flatMap { run in run.openingRefusals.prefix(3).map { "  \(run.label): \($0)" } }
        if !refusals.isEmpty {
            lines.append("")
            lines.append("Opening refusals (first of each run)")
            lines += refusals
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func render(_ rows: [[String]]) -> [String] {
        let widths = (0..<(rows.map(\.count).max() ?? 0)).map { column in rows.map { column < $0.count ? $0[column].count : 0 }.max() ?? 0 }
        return rows.map { row in
            "  "
                + row.enumerated().map { column, cell in
                    let pad = String(repeating: " ", count: widths[column] - cell.count)
                    return column == 0 ? cell + pad : pad + cell
                }.joined(separator: "  ")
        }
    }

    static func format(_ value: Double) -> String { DecimalText.format((value * 1e6).rounded() / 1e6) }

    /// USD with thousands separators and cents (``MoneyText``'s format); empty when not finite.
    static func money(_ value: Double) -> String { value.isFinite ? MoneyText.usd(value) : "" }

    /// A move as a signed percentage with one decimal (`−18.2 %`).
    static func signed(_ value: Double) -> String { String(format: "%+.1f %%", value * 100) }

    static func percent(_ value: Double?) -> String {
        guard let value else { return "" }
        return String(format: "%.3f %%", value * 100)
    }

    static func duration(_ milliseconds: Int64) -> String {
        if milliseconds % 3_600_000 == 0 { return "\(milliseconds / 3_600_000) h" }
        if milliseconds % 60_000 == 0 { return "\(milliseconds / 60_000) min" }
        return "\(Double(milliseconds) / 1000) s"
    }
}
