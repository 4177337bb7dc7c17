import Foundation
import MarginEngine
import MarginTestSupport
import Testing

/// `pm verify`, `pm build --params derive-pm2` and `pm compare --models` through the real executable.
@Suite struct ModelCLITests {
    /// A USDC-margined book Derive PM2 can margin.
    static let usdcBook = """
        {"simPos": [{"instId": "BTC-USDC-SWAP", "pos": "-5000", "avgPx": "88000"}, {"instId": "BTC-USD-260327-90000-C", "pos": "-100"}],
         "simAsset": [{"ccy": "USDC", "amt": "60000"}]}
        """

    /// A Derive-format case with cash only: whatever the scenarios, every P&L is 0 and MM = IM = cash
    /// (Derive: `minSPAN · factor − contingencies + MtM + cash` with all of them 0).
    static func cashOnlyCase(cash: String, mm: String, im: String) -> String {
        let scenarios =
            ["1.18", "0.82", "1"].map { #"{"SpotShock": \#($0), "VolShockDirection": "Up", "DampeningFactor": 1}"# }
            + [#"{"SpotShock": 1, "VolShockDirection": "LINEAR", "DampeningFactor": 1}"#]
        return """
            {"Scenario": {"Cash": \(cash), "SpotPrice": 3000.0, "SpotConfidence": 1.0, "NumPerps": 0, "PerpPrice": 3000.0,
              "PerpConfidence": 1.0, "UnrealisedPerpPNL": 0, "UnrealisedFunding": 0, "StablePrice": 1.0, "StableConfidence": 1.0},
             "Parameters": {"Scenarios": [\(scenarios.joined(separator: ", "))],
              "SkewShock": {"LINEAR_SCALE_CAP": 0.15, "LINEAR_CBASE": -0.05, "ABS_SCALE_CAP": 0.15, "ABS_CBASE": -0.05, "MIN_K_STAR": 0.01,
                "MIN_WIDTH_SCALE": 4.0, "VOL_PARAM_STATIC": 0.6, "VOL_PARAM_SCALE": -0.1},
              "VolShock": {"VOLRANGEUP": 0.5, "MIN_VOL_EVAL_SHOCKED": 0.45, "VOLRANGEDOWN": 0.275, "SHORTTERMPOWER": 0.3, "LONGTERMPOWER": 0.13,
                "DTE_FLOOR": 1.0},
              "Margin": {"MM_LOSS_FACTOR": 0.8, "IM_LOSS_FACTOR": 1.0, "SHORT_RATE_MULTSCALE": 0.5, "LONG_RATE_MULTSCALE": 1,
                "SHORT_RATE_ADDSCALE": 0.08, "LONG_RATE_ADDSCALE": 0.08, "BASE_STATIC_DISCOUNT": 0.95, "BASE_STATIC_DISCOUNT_NEG": 1.04},
              "BasisContingency": {"SCENARIO_SPOT_UP": 1.045, "SCENARIO_SPOT_DOWN": 0.955, "BASIS_CONT_ADD_FACTOR": 0.5, "BASIS_CONT_MULT_FACTOR": 2.0},
              "OtherContingency": {"PEG_LOSS_THRESHOLD": 0.98, "PEG_LOSS_FACTOR": 2.0, "CONF_THRESHOLD": 0.55, "CONF_MARGIN": 1.0,
                "MM_PERP_PERCENT": 0.015, "IM_PERP_PERCENT": 0.005, "MM_OPTION_PERCENT": 0.003, "IM_OPTION_PERCENT": 0.002}},
             "Result": {"CollateralMTM": 0.0, "OptionMTM": 0.0,
              "reg_losses": [["0.18", 1, "0"], ["-0.18", 1, "0"], ["0", 1, "0"]], "skew_losses": [["LINEAR", "0"]],
              "MM": \(mm), "IM": \(im)}}
            """
    }

    @Test func verifyPassesACaseAndReportsOneJSONLine() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write("test_1_cash.json", Self.cashOnlyCase(cash: "1234.5", mm: "1234.5", im: "1234.5"))
        let result = try runPM(["verify", "derive-pm2", directory.url.path])
        #expect(result.status == 0, "\(result)")
        let lastLine = try #require(result.stdout.split(separator: "\n").last)
        let summary = try JSONParser.parse(String(lastLine))
        #expect(summary[member: "cases"]?.scalarText == "1" && summary[member: "passed"]?.scalarText == "1")
        #expect(summary[member: "skipped"]?.scalarText == "0" && summary[member: "failed"]?.scalarText == "0")
        #expect(summary[member: "worstRelErr"]?.scalarText == "0")
    }

    @Test func verifyListsFailingQuantitiesAndSkipsWhatDeriveSkips() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        try directory.write("test_1_cash.json", Self.cashOnlyCase(cash: "1234.5", mm: "1234.5", im: "1234.5"))
        try directory.write("test_2_wrong.json", Self.cashOnlyCase(cash: "1000", mm: "1000.1", im: "1000"))
        try directory.write("test_67_misc_skew_scenario_with_spot_move.json", Self.cashOnlyCase(cash: "5", mm: "5", im: "5"))
        let result = try runPM(["verify", "derive-pm2", directory.url.path])
        #expect(result.status == 1, "\(result)")
        #expect(result.stdout.contains("FAIL test_2_wrong") && result.stdout.contains("MM: ours 1000, Derive 1000.1"), "\(result)")
        #expect(!result.stdout.contains("IM: ours"), "only the failing quantity is listed\n\(result)")
        #expect(result.stdout.contains("SKIP test_67_misc_skew_scenario_with_spot_move"))
        let summary = try JSONParser.parse(String(try #require(result.stdout.split(separator: "\n").last)))
        #expect(summary[member: "cases"]?.scalarText == "3" && summary[member: "passed"]?.scalarText == "1")
        #expect(summary[member: "skipped"]?.scalarText == "1" && summary[member: "failed"]?.scalarText == "1")
    }

    @Test func verifyFailsOnADirectoryWithoutCases() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let result = try runPM(["verify", "derive-pm2", directory.url.path])
        #expect(result.status != 0 && result.stderr.contains("holds no test_*.json case files"), "\(result)")
        #expect(try runPM(["verify", "okx-pm", directory.url.path]).status != 0)
    }

    @Test func buildUnderDeriveNamesItsModel() throws {
        let result = try runPM(["build", "--params", "derive-pm2", "--format", "json", "-"], stdin: Self.usdcBook)
        let response = try parseObject(result)
        #expect(response[member: "model"]?.scalarText == "derive-pm2" && response[member: "paramsId"]?.scalarText == "derive-pm2")
        #expect(response[member: "riskUnitData"]?.arrayItems.first?[member: "riskUnit"]?.scalarText == "BTC")
        // The request's paramsId selects the model as --params does.
        let byRequest = try parseObject(
            try runPM(
                ["build", "--format", "json", "-"],
                stdin: Self.usdcBook.replacingOccurrences(of: #"{"simPos""#, with: #"{"paramsId": "derive-pm2", "simPos""#)))
        #expect(byRequest[member: "totalMmr"] == response[member: "totalMmr"])
        let okx = try parseObject(try runPM(["build", "--format", "json", "-"], stdin: Self.usdcBook))
        #expect(okx[member: "model"]?.scalarText == "okx-pm" && okx[member: "paramsId"]?.scalarText == "okx-2025-01")
        let table = try runPM(["build", "--params", "derive-pm2", "--format", "table", "-"], stdin: Self.usdcBook)
        #expect(table.status == 0 && table.stdout.contains("Derive PM2") && table.stdout.contains("worst scenario"), "\(table)")
    }

    @Test func deriveRefusesAnUnmappableInstrumentByName() throws {
        let request = #"{"simPos": [{"instId": "BTC-USDC-SWAP", "pos": "1"}, {"instId": "BTC-USD-SWAP", "pos": "1"}]}"#
        let result = try runPM(["build", "--params", "derive-pm2", "--format", "json", "-"], stdin: request)
        expectOneLineError(result, field: "simPos[1].instId", value: "BTC-USD-SWAP")
        #expect(result.stderr.contains("coin-margined"))
    }

    @Test func otherCommandsRefuseTheDeriveModel() throws {
        for command in [["liquidate"], ["precheck", "--to", "3"], ["compare"]] {
            let result = try runPM(command + ["--params", "derive-pm2", "--format", "json", "-"], stdin: Self.usdcBook)
            #expect(
                result.status != 0 && result.stderr.contains("derive-pm2 model is available in pm build and pm compare --models"),
                "\(result)")
        }
    }

    @Test func compareModelsSideBySide() throws {
        let result = try runPM(["compare", "--models", "okx-pm,derive-pm2", "--format", "json", "-"], stdin: Self.usdcBook)
        let report = try parseObject(result)
        let columns = report[member: "models"]?.arrayItems ?? []
        #expect(columns.compactMap { $0[member: "model"]?.scalarText } == ["okx-pm", "derive-pm2"])
        #expect(columns.compactMap { $0[member: "paramsId"]?.scalarText } == ["okx-2025-01", "derive-pm2"])
        let deriveBuild = try parseObject(try runPM(["build", "--params", "derive-pm2", "--format", "json", "-"], stdin: Self.usdcBook))
        #expect(columns.last?[member: "totalMmr"] == deriveBuild[member: "totalMmr"])
        for column in columns {
            let drivers = column[member: "riskUnits"]?.arrayItems.first?[member: "drivers"]?.arrayItems ?? []
            #expect(!drivers.isEmpty, "\(column[member: "model"]?.scalarText ?? "") lists what drives its MMR")
        }
        let table = try runPM(["compare", "--models", "okx-pm,derive-pm2", "--format", "table", "-"], stdin: Self.usdcBook)
        #expect(table.status == 0 && table.stdout.contains("What drives each MMR"), "\(table)")
        #expect(try runPM(["compare", "--models", "okx-pm,cme", "-"], stdin: Self.usdcBook).status != 0)
    }
}
