import Foundation
import MarginEngine

/// Terminal tables of the margin-model responses: a Derive PM2 build and a model comparison. Like the
/// other tables they read the JSON the commands print with `--format json`.
extension TableRenderer {
    static func deriveBuild(_ response: JSONValue) -> String {
        let ts = Int64(response["marketTs"]?.text ?? "").map { UnixMillis($0).iso8601 } ?? "?"
        var out = "Derive PM2 — model \(response["model"]?.text ?? "?"), parameters \(response["paramsId"]?.text ?? "?"), market \(ts)\n\n"
        let ratio = response["marginRatio"]?.text ?? ""
        let summary: [(String, String)] = [
            ("Equity: MtM + cash (USD)", money(response["eqUsd"])),
            ("Total MMR (USD)", money(response["totalMmr"])),
            ("Total IMR (USD)", money(response["totalImr"])),
            ("Margin ratio (equity / MMR)", ratio.isEmpty ? "— (nothing required)" : percent(ratio)),
            ("Derive MM / IM surplus (USD)", "\(money(response["mm"])) / \(money(response["im"]))"),
            ("Unrealised perp P&L (USD)", money(response["upl"])),
        ]
        let labelWidth = summary.map(\.0.count).max() ?? 0
        for (label, value) in summary {
            out += "  " + label.padding(toLength: labelWidth, withPad: " ", startingAt: 0) + "  " + value + "\n"
        }
        if response["totalMmrBf"]?.text?.isEmpty == false {
            out += "  (after idxVol shock; before the shock total MMR was \(money(response["totalMmrBf"])) USD)\n"
        }

        let units = response["riskUnitData"]?.items ?? []
        out += "\nPortfolios (USD): MMR = −mmFactor × worst loss + MM contingencies; IMR adds the IM contingencies\n"
        out += table(
            headers: [
                "portfolio", "MtM", "cash", "worst loss", "worst scenario", "perp cont.", "naked-short cont.", "haircuts", "oracle (IM)",
                "MMR", "IMR",
            ],
            rows: units.map { unit in
                let c = unit["contingencies"]
                return [
                    unit["riskUnit"]?.text ?? "", money(unit["mtm"]), money(unit["cash"]), money(unit["worstLoss"]),
                    unit["worstScenario"]?.text ?? "",
                    money(c?["perpMm"]), money(c?["optionMm"]), money(c?["collateralMm"]), money(c?["oracleIm"]), money(unit["mmr"]),
                    money(unit["imr"]),
                ]
            }, leftAligned: [0, 4])

        // Portfolios whose scenarios move (a cash-only portfolio's are all zero).
        let withScenarios = units.filter { unit in (unit["scenarios"]?.items ?? []).contains { Double($0["pnl"]?.text ?? "") != 0 } }
        if let first = withScenarios.first?["scenarios"]?.items, !first.isEmpty {
            out += "\nScenario P&L (USD; static discount applied, tails dampened, skews −|P&L| per expiry)\n"
            var rows: [[String]] = []
            for (index, scenario) in first.enumerated() {
                let shock = scenario["volShock"]?.text ?? ""
                let label =
                    shock == "linear" || shock == "abs"
                    ? "\(shock) skew"
                    : "spot ×\(scenario["spotShock"]?.text ?? ""), vol \(shock)"
                        + (scenario["dampening"]?.text == "1" ? "" : ", damp \(plain(scenario["dampening"]))")
                rows.append([label] + withScenarios.map { money($0["scenarios"]?.items?[safe: index]?["pnl"]) })
            }
            out += table(headers: ["scenario"] + withScenarios.map { $0["riskUnit"]?.text ?? "" }, rows: rows, leftAligned: [0])
        }

        var expiryRows: [[String]] = []
        for unit in units {
            for expiry in unit["expiries"]?.items ?? [] {
                let days = (Double(expiry["secondsToExpiry"]?.text ?? "") ?? 0) / 86_400
                expiryRows.append([
                    unit["riskUnit"]?.text ?? "", String(format: "%.2f", days), plain(expiry["fwd"]), money(expiry["mtm"]),
                    String(format: "%.4f", Double(expiry["volShockUp"]?.text ?? "") ?? 0),
                    String(format: "%.4f", Double(expiry["volShockDown"]?.text ?? "") ?? 0),
                    String(
                        format: "%.4f / %.4f", Double(expiry["staticDiscountPos"]?.text ?? "") ?? 0,
                        Double(expiry["staticDiscountNeg"]?.text ?? "") ?? 0),
                    money(expiry["basisContingency"]), plain(expiry["nakedShorts"]),
                ])
            }
        }
        if !expiryRows.isEmpty {
            out += "\nExpiries\n"
            out += table(
                headers: [
                    "portfolio", "days", "forward", "MtM (USD)", "vol up ×", "vol down ×", "static disc. +/−", "basis cont.",
                    "naked shorts",
                ],
                rows: expiryRows, leftAligned: [0])
        }
        let positions = response["positions"]?.items ?? []
        if !positions.isEmpty {
            out += "\nPositions as Derive holds them\n"
            out += table(
                headers: ["instrument", "contracts", "Derive asset", "coins", "portfolio"],
                rows: positions.map {
                    [
                        $0["instId"]?.text ?? "", plain($0["pos"]), $0["deriveAsset"]?.text ?? "", plain($0["coins"]),
                        $0["riskUnit"]?.text ?? "",
                    ]
                }, leftAligned: [0, 2, 4])
        }
        for note in response["notes"]?.items ?? [] { out += "\nnote: \(note.text ?? "")" }
        return out + (response["notes"]?.items?.isEmpty == false ? "\n" : "")
    }

    static func models(_ report: JSONValue) -> String {
        let columns = report["models"]?.items ?? []
        let ts = Int64(report["marketTs"]?.text ?? "").map { UnixMillis($0).iso8601 } ?? "?"
        func ratio(_ value: JSONValue?) -> String {
            guard let text = value?.text, !text.isEmpty else { return "—" }
            return percent(text)
        }
        var out = "Margin models side by side (USD) — market \(ts)\n"
        let differences = report["difference"]?.items ?? []
        func difference(_ model: String?, _ key: String) -> String {
            guard let entry = differences.first(where: { $0["model"]?.text == model }) else { return "" }
            return money(entry[key])
        }
        let first = columns.first?["model"]?.text ?? ""
        out += table(
            headers: [""] + columns.map { "\($0["model"]?.text ?? "") (\($0["paramsId"]?.text ?? ""))" },
            rows: [
                ["equity"] + columns.map { money($0["eqUsd"]) },
                ["adjusted equity"] + columns.map { money($0["adjEq"]) },
                ["total MMR"] + columns.map { money($0["totalMmr"]) },
                ["total IMR"] + columns.map { money($0["totalImr"]) },
                ["margin ratio"] + columns.map { ratio($0["marginRatio"]) },
                ["available equity"] + columns.map { money($0["availEq"]) },
                ["MMR − \(first)"] + columns.map { difference($0["model"]?.text, "totalMmr") },
                ["IMR − \(first)"] + columns.map { difference($0["model"]?.text, "totalImr") },
            ], leftAligned: [0])

        var units: [String] = []
        for column in columns {
            for unit in column["riskUnits"]?.items ?? [] {
                if let name = unit["riskUnit"]?.text, !units.contains(name) { units.append(name) }
            }
        }
        func unit(_ column: JSONValue, _ name: String) -> JSONValue? { column["riskUnits"]?.items?.first { $0["riskUnit"]?.text == name } }
        if !units.isEmpty {
            out += "\nBy risk unit / portfolio (USD)\n"
            var headers = ["unit"]
            for column in columns { headers += ["\(column["model"]?.text ?? "") MMR", "IMR"] }
            out += table(
                headers: headers,
                rows: units.map { name in
                    [name] + columns.flatMap { [money(unit($0, name)?["mmr"]), money(unit($0, name)?["imr"])] }
                }, leftAligned: [0])
        }
        out += "\nWhat drives each MMR (USD, largest first)\n"
        for column in columns {
            for unit in column["riskUnits"]?.items ?? [] {
                let drivers = (unit["drivers"]?.items ?? []).sorted {
                    (Double($0["usd"]?.text ?? "") ?? 0) > (Double($1["usd"]?.text ?? "") ?? 0)
                }
                let text =
                    drivers.isEmpty
                    ? "nothing required" : drivers.map { "\($0["name"]?.text ?? "") \(money($0["usd"]))" }.joined(separator: "; ")
                let dominant = unit["dominant"]?.text ?? ""
                out +=
                    "  \(column["model"]?.text ?? "") \(unit["riskUnit"]?.text ?? ""): \(text)"
                    + (dominant.isEmpty ? "" : " — sets the MMR: \(dominant)") + "\n"
            }
        }
        for note in report["notes"]?.items ?? [] { out += "note: \(note.text ?? "")\n" }
        return out
    }
}

extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
