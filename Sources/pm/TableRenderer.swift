import Foundation
import MarginEngine

/// Renders Position Builder responses as terminal tables. It reads the same JSON object the API returns,
/// so the table can never disagree with `--format json`.
enum TableRenderer {
    static func build(_ response: JSONValue) -> String {
        var out = ""
        let ts = Int64(response["marketTs"]?.text ?? "").map { UnixMillis($0).iso8601 } ?? "?"
        out += "Portfolio margin — parameters \(response["paramsId"]?.text ?? "?"), market \(ts)\n\n"
        let ratio = response["marginRatio"]?.text ?? ""
        let summary: [(String, String)] = [
            ("Equity (USD, undiscounted)", money(response["eqUsd"])),
            ("Adjusted equity (USD)", money(response["adjEq"])),
            ("Total MMR (USD)", money(response["totalMmr"])),
            ("Total IMR (USD)", money(response["totalImr"])),
            ("Derivatives MMR (USD)", money(response["derivMmr"])),
            ("Borrowing MMR / IMR (USD)", "\(money(response["borrowMmr"])) / \(money(response["borrowImr"]))"),
            ("Margin ratio", ratio.isEmpty ? "— (nothing required)" : percent(ratio)),
            ("Account leverage", (response["acctLever"]?.text).flatMap(Double.init).map { String(format: "%.3fx", $0) } ?? "—"),
            ("Unrealised P&L (USD)", money(response["upl"])),
        ]
        let labelWidth = summary.map(\.0.count).max() ?? 0
        for (label, value) in summary {
            out += "  " + label.padding(toLength: labelWidth, withPad: " ", startingAt: 0) + "  " + value + "\n"
        }
        if response["totalMmrBf"]?.text?.isEmpty == false {
            out += "  (after idxVol shock; before the shock total MMR was \(money(response["totalMmrBf"])) USD)\n"
        }

        let units = response["riskUnitData"]?.items ?? []
        guard !units.isEmpty else { return out + "\nNo risk units: the portfolio holds no derivatives.\n" }
        out += "\nRisk units (USD)\n"
        let headers = ["unit", "tier", "MR1", "MR2", "MR3", "MR4", "MR5", "MR6", "MR7", "MR8", "MR9", "MMR", "IMR", "dominant"]
        var rows: [[String]] = []
        for unit in units {
            var row = [unit["riskUnit"]?.text ?? "", unit["tier"]?.text ?? ""]
            for key in ["mr1", "mr2", "mr3", "mr4", "mr5", "mr6", "mr7", "mr8", "mr9", "mmr", "imr"] { row.append(money(unit[key])) }
            row.append(unit["dominant"]?.text ?? "")
            rows.append(row)
        }
        out += table(headers: headers, rows: rows, leftAligned: [0, 1, 13])

        out += "\nWorst scenarios\n"
        for unit in units {
            let mr1 = unit["mr1FinalResult"]
            let mr6 = unit["mr6FinalResult"]
            out +=
                "  \(unit["riskUnit"]?.text ?? ""): MR1 worst cell spot \(signedPercent(mr1?["spotShock"]?.text)), vol \(mr1?["volShock"]?.text ?? "")"
                + " → P&L \(money(mr1?["pnl"])) USD; MR6 worst spot \(signedPercent(mr6?["spotShock"]?.text)) → P&L \(money(mr6?["pnl"])) USD\n"
        }

        for unit in units {
            guard let scenarios = unit["mr1Scenarios"], case .object(let same)? = scenarios["volSame"] else { continue }
            let moves = same.keys
            out += "\nMR1 grid, \(unit["riskUnit"]?.text ?? "") — P&L in USD by spot move (columns) and volatility (rows)\n"
            var gridRows: [[String]] = []
            for (label, key) in [("vol up", "volShockUp"), ("vol same", "volSame"), ("vol down", "volShockDown")] {
                gridRows.append([label] + moves.map { money(scenarios[key]?[$0]) })
            }
            out += table(headers: ["spot move"] + moves.map { signedPercent($0) }, rows: gridRows, leftAligned: [0])
        }

        out += "\nPositions\n"
        var positionRows: [[String]] = []
        for unit in units {
            for position in unit["portfolios"]?.items ?? [] {
                positionRows.append([
                    unit["riskUnit"]?.text ?? "", position["instId"]?.text ?? "", position["instType"]?.text ?? "",
                    plain(position["amt"]), plain(position["avgPx"]), plain(position["markPx"]), plain(position["floatPnl"]),
                    money(position["notionalUsd"]), plain(position["delta"]), money(position["worstCellPnl"]),
                    money(position["marginalMmr"]),
                ])
            }
        }
        let greeks = response["greeksType"]?.text ?? "BS"
        out += table(
            headers: [
                "unit", "instrument", "type", "size", "avgPx", "markPx", "floatPnl", "notional USD", "delta (\(greeks))", "worst-cell P&L",
                "marginal MMR",
            ],
            rows: positionRows, leftAligned: [0, 1, 2])
        return out
    }

    static func graph(_ response: JSONValue) -> String {
        var rows: [[String]] = []
        for point in response["mmrData"]?.items ?? [] {
            let ratio = point["mmrRatio"]?.text ?? ""
            rows.append([signedPercent(point["shockFactor"]?.text), money(point["mmr"]), ratio.isEmpty ? "—" : percent(ratio)])
        }
        return "MMR and margin ratio against a move of every index\n"
            + table(headers: ["spot move", "MMR (USD)", "margin ratio"], rows: rows, leftAligned: [])
    }

    static func compare(_ report: JSONValue) -> String {
        let pm = report["portfolioMargin"]
        let classic = report["classic"]
        let difference = report["difference"]
        func ratio(_ value: JSONValue?) -> String {
            guard let text = value?.text, !text.isEmpty else { return "—" }
            return percent(text)
        }
        var out = "Portfolio margin vs classic margin (USD) — parameters \(report["paramsId"]?.text ?? "?")\n"
        out += table(
            headers: ["", "portfolio margin", "classic", "classic − PM"],
            rows: [
                ["total MMR", money(pm?["totalMmr"]), money(classic?["totalMmr"]), money(difference?["totalMmr"])],
                ["total IMR", money(pm?["totalImr"]), money(classic?["totalImr"]), money(difference?["totalImr"])],
                ["margin ratio", ratio(pm?["mgnRatio"]), ratio(classic?["mgnRatio"]), ""],
                ["available equity", money(pm?["availEq"]), money(classic?["availEq"]), money(difference?["availEq"])],
                ["adjusted equity", money(pm?["adjEq"]), money(classic?["adjEq"]), ""],
            ], leftAligned: [0])
        var coins: [String] = []
        for unit in (pm?["riskUnits"]?.items ?? []) + (classic?["riskUnits"]?.items ?? []) {
            if let coin = unit["riskUnit"]?.text, !coins.contains(coin) { coins.append(coin) }
        }
        func unit(_ mode: JSONValue?, _ coin: String) -> JSONValue? { mode?["riskUnits"]?.items?.first { $0["riskUnit"]?.text == coin } }
        if !coins.isEmpty {
            out += "\nBy risk unit (USD)\n"
            out += table(
                headers: ["unit", "PM MMR", "PM IMR", "classic MMR", "classic IMR"],
                rows: coins.sorted().map { coin in
                    [
                        coin, money(unit(pm, coin)?["mmr"]), money(unit(pm, coin)?["imr"]), money(unit(classic, coin)?["mmr"]),
                        money(unit(classic, coin)?["imr"]),
                    ]
                }, leftAligned: [0])
        }
        return out
    }

    static func precheck(_ report: JSONValue) -> String {
        let allowed = report["allowed"]?.text == "true"
        func name(_ level: String?) -> String { level == "4" ? "portfolio margin (4)" : "classic margin (3)" }
        var out = "Switch from \(name(report["from"]?.text)) to \(name(report["to"]?.text)): \(allowed ? "ALLOWED" : "REFUSED")\n"
        for reason in report["reasons"]?.items ?? [] { out += "  - \(reason.text ?? "")\n" }
        func ratio(_ value: JSONValue?) -> String {
            guard let text = value?.text, !text.isEmpty else { return "—" }
            return percent(text)
        }
        let before = report["before"]
        let after = report["after"]
        out +=
            "\n"
            + table(
                headers: ["", "before", "after"],
                rows: [
                    ["margin ratio", ratio(before?["mgnRatio"]), ratio(after?["mgnRatio"])],
                    ["available equity (USD)", money(before?["availEq"]), money(after?["availEq"])],
                    ["total MMR (USD)", money(before?["totalMmr"]), money(after?["totalMmr"])],
                    ["total IMR (USD)", money(before?["totalImr"]), money(after?["totalImr"])],
                ], leftAligned: [0])
        let failing = report["failingPositions"]?.items ?? []
        if !failing.isEmpty {
            out += "\nPositions failing the target's tiers\n"
            for position in failing { out += "  \(position["instId"]?.text ?? ""): \(position["reason"]?.text ?? "")\n" }
        }
        return out
    }

    static func liquidation(_ report: JSONValue) -> String {
        func ratio(_ value: JSONValue?) -> String {
            guard let text = value?.text, !text.isEmpty else { return "—" }
            return percent(text)
        }
        let before = report["before"]
        let after = report["after"]
        var out = "Liquidation — \(report["summary"]?.text ?? "")\n\n"
        out += table(
            headers: ["", "before", "after"],
            rows: [
                ["margin ratio", ratio(before?["mgnRatio"]), ratio(after?["mgnRatio"])],
                ["adjusted equity (USD)", money(before?["adjEq"]), money(after?["adjEq"])],
                ["total MMR (USD)", money(before?["totalMmr"]), money(after?["totalMmr"])],
                ["positions", String(before?["positions"]?.items?.count ?? 0), String(after?["positions"]?.items?.count ?? 0)],
            ], leftAligned: [0])
        let actions = report["actions"]?.items ?? []
        if !actions.isEmpty {
            out += "\nActions\n"
            var rows: [[String]] = []
            for (number, action) in actions.enumerated() {
                rows.append([
                    String(number + 1), action["step"]?.text ?? "", action["status"]?.text ?? "", action["riskUnit"]?.text ?? "",
                    action["instId"]?.text ?? "", action["side"]?.text ?? "", plain(action["sz"]), plain(action["px"]),
                    money(action["fee"]),
                    "\(ratio(action["mgnRatioBefore"])) → \(ratio(action["mgnRatioAfter"]))",
                ])
            }
            out += table(
                headers: ["#", "step", "status", "unit", "instrument", "side", "size", "price", "fee USD", "margin ratio"],
                rows: rows, leftAligned: [1, 2, 3, 4, 5])
            out += "\nReasons\n"
            for (number, action) in actions.enumerated() { out += "  \(number + 1). \(action["reason"]?.text ?? "")\n" }
        }
        return out
    }

    static func table(headers: [String], rows: [[String]], leftAligned: Set<Int>) -> String {
        var widths = headers.map(\.count)
        for row in rows {
            for (column, cell) in row.enumerated() where column < widths.count { widths[column] = max(widths[column], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { column, cell in
                let padding = String(repeating: " ", count: max(0, widths[column] - cell.count))
                return leftAligned.contains(column) ? cell + padding : padding + cell
            }.joined(separator: "  ")
        }
        var out = "  " + line(headers) + "\n"
        out += "  " + widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ") + "\n"
        for row in rows { out += "  " + line(row) + "\n" }
        return out
    }

    /// A USD figure of a response in ``MoneyText``'s format; text that is not a number is shown as it is.
    static func money(_ value: JSONValue?) -> String {
        guard let text = value?.text, let number = Double(text) else { return value?.text ?? "" }
        return MoneyText.usd(number)
    }

    static func plain(_ value: JSONValue?) -> String {
        guard let text = value?.text, let number = Double(text) else { return value?.text ?? "" }
        if abs(number) >= 1000 || number == number.rounded() { return money(value).replacingOccurrences(of: ".00", with: "") }
        return String(format: "%.6g", number)
    }

    static func percent(_ text: String) -> String {
        guard let number = Double(text) else { return text }
        return String(format: "%.2f %%", number * 100)
    }

    static func signedPercent(_ text: String?) -> String {
        guard let text, let number = Double(text) else { return text ?? "" }
        if number == 0 { return "0 %" }
        return String(format: "%+.0f %%", number * 100)
    }
}

extension JSONValue {
    subscript(key: String) -> JSONValue? {
        guard case .object(let object) = self else { return nil }
        return object[key]
    }

    var text: String? {
        switch self {
        case .string(let string): string
        case .number(let literal): literal
        case .bool(let flag): flag ? "true" : "false"
        default: nil
        }
    }

    var items: [JSONValue]? {
        guard case .array(let items) = self else { return nil }
        return items
    }
}
