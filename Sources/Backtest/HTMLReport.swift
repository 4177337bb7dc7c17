import Foundation
import MarginEngine

/// The backtest report as one self-contained HTML page: the report's JSON embedded, tables rendered here, the
/// charts (price path, margin-ratio distribution, liquidations and the insurance fund, breaches, all on one
/// time axis) drawn as inline SVG by the page's own script. Nothing is fetched: no fonts, scripts or images
/// from anywhere, so the file can be mailed or archived and opens offline.
public enum BacktestHTML {
    /// The page for a report (``BacktestReport/json(_:)``).
    public static func page(_ report: JSONValue) -> String {
        let css = resource("report.css")
        let script = resource("report.js")
        // Inside <script>, "</" would end the element: JSON strings may hold any text, so `<` is escaped (valid JSON).
        let data = JSONWriter.serialize(report).replacingOccurrences(of: "<", with: "\\u003c")
        let path = report[key: "path"]
        let coins = (path?[key: "coins"]?.array ?? []).compactMap(\.text).joined(separator: ", ")
        let title = "Margin backtest: \(coins) \(path?[key: "start"]?.text ?? "") – \(path?[key: "end"]?.text ?? "")"
        var body: [String] = []
        body.append("<header><h1>\(escape(title))</h1>\(summary(report))</header>")
        body.append("<main>")
        body.append(section("charts", "The path and the population on one time axis", chartsSkeleton(report)))
        if report[key: "mode"]?.text == "replay" {
            body.append(section("outcomes", "Outcomes on the exchange core", outcomesTable(report)))
        }
        body.append(section("coverage", "Coverage of the maintenance requirement", coverageTables(report)))
        body.append(section("breaches", "Breaches", breachTables(report)))
        body.append(section("method", "How these numbers were made", method(report)))
        body.append("</main>")
        return """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:">
            <title>\(escape(title))</title>
            <style>
            \(css)
            </style>
            </head>
            <body>
            \(body.joined(separator: "\n"))
            <script type="application/json" id="backtest-data">\(data)</script>
            <script>
            \(script)
            </script>
            </body>
            </html>

            """
    }

    static func resource(_ name: String) -> String {
        guard let url = Bundle.module.url(forResource: "Resources/\(name)", withExtension: nil),
            let text = try? String(contentsOf: url, encoding: .utf8)
        else { return "/* \(name) missing from the bundle */" }
        return text
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func section(_ id: String, _ heading: String, _ content: String) -> String {
        "<section id=\"\(id)\"><h2>\(escape(heading))</h2>\n\(content)\n</section>"
    }

    static func summary(_ report: JSONValue) -> String {
        var items: [String] = []
        for file in report[key: "path"]?[key: "files"]?.array ?? [] {
            items.append(
                "<li><b>\(escape(file[key: "coin"]?.text ?? ""))</b> \(escape(file[key: "file"]?.text ?? "")): \(file[key: "rows"]?.text ?? "") rows, "
                    + "step \(file[key: "medianStepSeconds"]?.text ?? "") s, \(file[key: "first"]?.text ?? "") → \(file[key: "last"]?.text ?? "") "
                    + "(range \(file[key: "lowest"]?.text ?? "")–\(file[key: "highest"]?.text ?? ""))</li>")
        }
        let market = report[key: "market"]
        items.append(
            "<li>market: \(escape(market?[key: "name"]?.text ?? "")) at \(escape(market?[key: "ts"]?.text ?? "")), moved by the path's returns</li>"
        )
        items.append("<li>volatility: \(escape(report[key: "volatility"]?[key: "description"]?.text ?? ""))</li>")
        items.append(
            "<li>coverage horizon: \(report[key: "horizonSeconds"]?.text ?? "") s; mode: \(escape(report[key: "mode"]?.text ?? ""))</li>")
        items.append("<li>population: \(escape(report[key: "population"]?[key: "summary"]?.text ?? ""))</li>")
        items.append("<li>runtime: \(report[key: "runtimeSeconds"]?.text ?? "") s (measured)</li>")
        return "<ul class=\"summary\">" + items.joined() + "</ul>"
    }

    static func chartsSkeleton(_ report: JSONValue) -> String {
        let runs = (report[key: "runs"]?.array ?? []).compactMap { $0[key: "label"]?.text }
        let options = runs.enumerated().map { "<option value=\"\($0.offset)\">\(escape($0.element))</option>" }.joined()
        let replay = report[key: "mode"]?.text == "replay"
        var figures = [
            "<figure><figcaption>Price path (each coin's close, % of its first; band: low–high of the bucket)</figcaption><svg id=\"chart-price\" class=\"chart\" role=\"img\"></svg></figure>"
        ]
        if replay {
            figures.append(
                "<figure><figcaption>Margin ratio of accounts with a requirement: 5–95 % and 25–75 % bands, median (log scale; red 100 % liquidation, amber 110 % margin call)</figcaption><svg id=\"chart-ratio\" class=\"chart\" role=\"img\"></svg></figure>"
            )
            figures.append(
                "<figure><figcaption>Liquidation runs (bars) and the insurance fund, USD (line)</figcaption><svg id=\"chart-liquidations\" class=\"chart\" role=\"img\"></svg></figure>"
            )
        }
        figures.append(
            "<figure><figcaption>Coverage breaches by the window's start (account-windows)</figcaption><svg id=\"chart-breaches\" class=\"chart\" role=\"img\"></svg></figure>"
        )
        return
            "<p class=\"controls\"><label>Run <select id=\"run-select\">\(options)</select></label> <span id=\"hover\" class=\"hover\"></span></p>"
            + figures.joined(separator: "\n")
    }

    static func table(_ header: [String], _ rows: [[String]], id: String? = nil, numericFrom: Int = 1) -> String {
        var html = "<table" + (id.map { " id=\"\($0)\"" } ?? "") + "><thead><tr>"
        html += header.map { "<th>\(escape($0))</th>" }.joined()
        html += "</tr></thead><tbody>"
        for row in rows {
            html +=
                "<tr>"
                + row.enumerated().map { column, cell in
                    column >= numericFrom ? "<td class=\"num\">\(escape(cell))</td>" : "<td>\(escape(cell))</td>"
                }.joined() + "</tr>"
        }
        return html + "</tbody></table>"
    }

    /// A JSON value as a table cell: USD amounts (keys ending in `USD`) with thousands separators and cents,
    /// coverage shares as percentages (4 decimals), everything else as the JSON has it.
    static func cell(_ key: String, _ value: JSONValue?) -> String {
        guard let value else { return "" }
        if case .number(let literal) = value, let number = Double(literal) {
            if key.hasSuffix("USD") { return BacktestReport.money(number) }
            if key == "coverage" || key == "imrCoverage" { return String(format: "%.4f %%", number * 100) }
        }
        return value.text ?? ""
    }

    static func outcomesTable(_ report: JSONValue) -> String {
        let keys = [
            "liquidatedAccounts", "partiallyLiquidated", "fullyLiquidated", "marginCalls", "badDebtUSD", "insuranceFundDrawUSD",
            "insuranceFundIncomeUSD", "insuranceFundEndUSD", "insuranceFundLowestUSD", "lowestMarginRatio",
        ]
        var rows: [[String]] = []
        for run in report[key: "runs"]?.array ?? [] {
            guard let outcomes = run[key: "outcomes"] else { continue }
            rows.append([run[key: "label"]?.text ?? "", run[key: "accountsOpened"]?.text ?? ""] + keys.map { cell($0, outcomes[key: $0]) })
        }
        return table(
            [
                "run", "accounts", "liquidated", "partially", "fully", "margin calls (< 110 %, not liquidated)", "bad debt USD",
                "fund draw USD",
                "fund income USD", "fund end USD", "fund lowest USD", "lowest ratio",
            ], rows, id: "outcomes-table")
            + "<p class=\"note\">One row per parameter set and mode, the same books in each. The insurance fund starts at 0 and "
            + "receives liquidation fees, collateral penalties and interest; it pays every deficit (bad debt), so its draw equals the bad debt.</p>"
    }

    static func coverageTables(_ report: JSONValue) -> String {
        var rows: [[String]] = []
        var kindRows: [String: [String]] = [:]
        let runs = report[key: "runs"]?.array ?? []
        for run in runs {
            guard let coverage = run[key: "coverage"] else { continue }
            func value(_ key: String) -> String { cell(key, coverage[key: key]) }
            rows.append([
                run[key: "label"]?.text ?? "", value("observations"), value("breaches"), value("coverage"), value("meets99"),
                value("meets99_7"),
                value("imrCoverage"), value("worstShortfallUSD"), value("totalShortfallUSD"), value("skippedWindows"),
            ])
            for entry in coverage[key: "byKind"]?.array ?? [] {
                let kind = entry[key: "kind"]?.text ?? ""
                kindRows[kind, default: []].append("\(cell("coverage", entry[key: "coverage"])) (\(entry[key: "breaches"]?.text ?? ""))")
            }
        }
        let horizon = report[key: "horizonSeconds"]?.text ?? ""
        return table(
            [
                "run", "observations", "breaches", "coverage", "≥ 99 %", "≥ 99.7 %", "IMR coverage", "worst shortfall USD",
                "total shortfall USD", "skipped",
            ],
            rows, id: "coverage-table")
            + "<p class=\"note\">An observation is one account over one window of \(escape(horizon)) s; a breach is a loss (adjusted equity at the start minus at the end, "
            + "books held fixed) above the MMR held at the start. Clearing houses size margin to cover 99 % (EMIR: 99.5 % for OTC) of such losses; 99.7 % is the stricter yardstick.</p>"
            + "<h3>Moves over the horizon against the spot shocks</h3>" + movesTable(report)
            + "<h3>Coverage by book kind (breaches)</h3>"
            + table(
                ["kind"] + runs.compactMap { $0[key: "label"]?.text }, kindRows.keys.sorted().map { [$0] + (kindRows[$0] ?? []) },
                id: "kind-table")
    }

    static func movesTable(_ report: JSONValue) -> String {
        func percent(_ value: JSONValue?) -> String {
            guard case .number(let literal)? = value, let number = Double(literal) else { return "" }
            return String(format: "%+.1f %%", number * 100)
        }
        let rows = (report[key: "horizonMoves"]?.array ?? []).map { moves in
            [moves[key: "coin"]?.text ?? "", moves[key: "windows"]?.text ?? ""]
                + ["worstFall", "fall99_7", "fall99", "rise99", "rise99_7", "largestRise"].map { percent(moves[key: $0]) }
                + [
                    (moves[key: "shocks"]?.array ?? []).map { shock in
                        if let rate = shock[key: "collateralRate"]?.text {
                            return "\(shock[key: "paramsId"]?.text ?? ""): no spot shock; collateral rate \(rate)"
                        }
                        return
                            "\(shock[key: "paramsId"]?.text ?? ""): MR1 ±\(percent(shock[key: "mr1LargestMove"]).dropFirst()), MR6 ±\(percent(shock[key: "mr6ExtremeMove"]).dropFirst()) × \(shock[key: "mr6LossFactor"]?.text ?? "")"
                    }.joined(separator: "; ")
                ]
        }
        return table(
            [
                "coin", "windows", "worst fall", "0.3 % fell below", "1 % fell below", "1 % rose above", "0.3 % rose above", "largest rise",
                "spot shocks",
            ],
            rows, id: "moves-table")
            + "<p class=\"note\">A linear position's MMR covers a move of about the larger of MR1's largest move and MR6's move times its factor; "
            + "moves beyond that in more than 1 % (0.3 %) of windows mean the spot shock, not the book, decides the coverage.</p>"
    }

    static func breachTables(_ report: JSONValue) -> String {
        var html: [String] = []
        for (index, run) in (report[key: "runs"]?.array ?? []).enumerated() {
            let label = run[key: "label"]?.text ?? ""
            let coverage = run[key: "coverage"]
            let binding = (coverage?[key: "byBinding"]?.array ?? []).map {
                [$0[key: "component"]?.text ?? "", $0[key: "breaches"]?.text ?? ""]
            }
            let worst = (coverage?[key: "worst"]?.array ?? []).map { breach in
                ["account", "kind", "pathStart", "lossUSD", "mmrUSD", "shortfallUSD", "binding"].map { cell($0, breach[key: $0]) }
            }
            html.append("<h3>\(escape(label))</h3>")
            if binding.isEmpty {
                html.append("<p>No breach.</p>")
                continue
            }
            html.append(
                "<div class=\"pair\">" + table(["binding component at the start", "breaches"], binding, id: "binding-\(index)")
                    + table(
                        ["account", "kind", "window start (path time)", "loss USD", "MMR USD", "shortfall USD", "binding"], worst,
                        id: "worst-\(index)", numericFrom: 3)
                    + "</div>")
        }
        return html.joined(separator: "\n")
    }

    static func method(_ report: JSONValue) -> String {
        let replay = report[key: "mode"]?.text == "replay"
        var items = [
            "The path's files are aligned on the instants they all have; nothing is filled in, interpolated or extrapolated. Each coin's index moves by its close over its first close; perpetual and future marks and option forwards move with it (basis held), a stablecoin's index moves and the marks quoted in it move inversely.",
            "Options are priced by Black-76 at the moved forward with the stated volatility rule.",
            "Coverage holds each account's book as opened (a clean backtest): the engine's batch kernel margins every account at every step, and each window's loss is the fall of its adjusted equity (USD, the margin ratio's numerator) from the start to one horizon later; accounts without a requirement at the start are not scored.",
        ]
        if replay {
            items.append(
                "Outcomes come from the sandbox's exchange core, one exchange per parameter set and mode, exactly as pm serve runs it: funding at funding hours, per-second interest, expiries, re-margining through the scenario vectors, the liquidation planner (DDH1, DDH2, basis, general reduction, collateral, deficit) and the insurance fund."
            )
        } else {
            items.append(
                "Windows mode: every window of the series is applied, as a move from the base market, to the books as opened there; it scores coverage only (the exchange does not replay years of hours)."
            )
        }
        return "<ul>" + items.map { "<li>\(escape($0))</li>" }.joined()
            + "</ul><p class=\"note\">Details: docs/backtest.md in the project.</p>"
    }
}

extension JSONValue {
    /// The member `key` of an object (nil otherwise).
    subscript(key key: String) -> JSONValue? {
        guard case .object(let object) = self else { return nil }
        return object[key]
    }

    /// The elements of an array (nil otherwise).
    var array: [JSONValue]? {
        guard case .array(let elements) = self else { return nil }
        return elements
    }

    /// A scalar as text: strings, numbers, booleans (`yes`/`no`); "" for null.
    var text: String? {
        switch self {
        case .string(let text): text
        case .number(let literal): literal
        case .bool(let flag): flag ? "yes" : "no"
        case .null: ""
        default: nil
        }
    }
}
