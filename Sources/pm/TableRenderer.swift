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
            ("Equity (USD)", money(response["eq"])),
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
        for (label, value) in summary { out += "  " + label.padding(toLength: labelWidth, withPad: " ", startingAt: 0) + "  " + value + "\n" }
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
            out += "  \(unit["riskUnit"]?.text ?? ""): MR1 worst cell spot \(signedPercent(mr1?["spotShock"]?.text)), vol \(mr1?["volShock"]?.text ?? "")"
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
                    money(position["notionalUsd"]), plain(position["delta"]), money(position["worstCellPnl"]), money(position["marginalMmr"]),
                ])
            }
        }
        let greeks = response["greeksType"]?.text ?? "BS"
        out += table(
            headers: ["unit", "instrument", "type", "size", "avgPx", "markPx", "floatPnl", "notional USD", "delta (\(greeks))", "worst-cell P&L", "marginal MMR"],
            rows: positionRows, leftAligned: [0, 1, 2])
        return out
    }

    static func graph(_ response: JSONValue) -> String {
        var rows: [[String]] = []
        for point in response["mmrData"]?.items ?? [] {
            let ratio = point["mmrRatio"]?.text ?? ""
            rows.append([signedPercent(point["shockFactor"]?.text), money(point["mmr"]), ratio.isEmpty ? "—" : percent(ratio)])
        }
        return "MMR and margin ratio against a move of every index\n" + table(headers: ["spot move", "MMR (USD)", "margin ratio"], rows: rows, leftAligned: [])
    }

    static func table(headers: [String], rows: [[String]], leftAligned: Set<Int>) -> String {
        var widths = headers.map(\.count)
        for row in rows { for (column, cell) in row.enumerated() where column < widths.count { widths[column] = max(widths[column], cell.count) } }
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

    static func money(_ value: JSONValue?) -> String {
        guard let text = value?.text, let number = Double(text) else { return value?.text ?? "" }
        let formatter = NumberFormatter()
        formatter.numberStyle = .decimal
        formatter.minimumFractionDigits = 2
        formatter.maximumFractionDigits = 2
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.usesGroupingSeparator = true
        formatter.groupingSeparator = ","
        formatter.groupingSize = 3
        let rounded = (number * 100).rounded() / 100
        return formatter.string(from: NSNumber(value: rounded == 0 ? 0 : rounded)) ?? text
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
