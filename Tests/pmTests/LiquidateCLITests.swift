import MarginEngine
import MarginTestSupport
import Testing

/// `pm liquidate` through the real binary (docs/methodology/04-liquidation.md; issue: "below 100 % it liquidates;
/// above, it says the account is safe and why").
@Suite struct LiquidateCLITests {
    static let overLevered =
        #"{"simPos":[{"instId":"BTC-USDT-SWAP","pos":"-3000","avgPx":"87000"}],"simAsset":[{"ccy":"USDT","amt":"60000"}]}"#
    static let comfortable =
        #"{"simPos":[{"instId":"BTC-USDT-SWAP","pos":"-10","avgPx":"87000"}],"simAsset":[{"ccy":"USDT","amt":"60000"}]}"#

    @Test func liquidatesAnUnderMarginedAccount() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let result = try runPM(["liquidate", try directory.write("request.json", Self.overLevered), "--format", "json"])
        #expect(result.status == 0 && result.stderr.isEmpty, "\(result)")
        let report = try parseObject(result)
        #expect(report[member: "triggered"] == .bool(true))
        for state in ["before", "after"] {
            for key in ["mgnRatio", "adjEq", "totalMmr", "positions"] {
                #expect(report[member: state]?[member: key] != nil, "\(state).\(key)")
            }
        }
        let before = try #require(report[member: "before"]?[member: "mgnRatio"]?.doubleValue)
        let after = try #require(report[member: "after"]?[member: "mgnRatio"]?.doubleValue)
        #expect(before <= 1 && after > 1.1)
        let actions = report[member: "actions"]?.arrayItems ?? []
        #expect(!actions.isEmpty)
        for action in actions {
            for key in [
                "step", "status", "riskUnit", "instId", "side", "sz", "px", "fee", "mgnRatioBefore", "mgnRatioAfter", "mmrBefore",
                "mmrAfter", "reason",
            ] {
                #expect(action[member: key] != nil, "action.\(key)")
            }
        }
        let executed = actions.filter { $0[member: "status"]?.scalarText == "executed" }
        #expect(executed.first?[member: "step"]?.scalarText == "GENERAL")
        #expect(executed.first?[member: "side"]?.scalarText == "buy", "a short is reduced by buying")
        // The fee is the tier-1 liquidation fee on the fill's notional.
        let fill = try #require(executed.first?[member: "fills"]?.arrayItems.first)
        let size = try #require(fill[member: "sz"]?.doubleValue)
        let price = try #require(fill[member: "px"]?.doubleValue)
        let feeUSD = try #require(fill[member: "feeUsd"]?.doubleValue)
        #expect(isClose(feeUSD, 0.001 * size * 0.01 * price * 0.99975, relative: 1e-3), "fee on notional at the mark")
    }

    @Test func saysWhyASafeAccountIsSafe() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let json = try parseObject(try runPM(["liquidate", try directory.write("request.json", Self.comfortable), "--format", "json"]))
        #expect(json[member: "triggered"] == .bool(false))
        #expect(json[member: "actions"]?.arrayItems.isEmpty == true)
        #expect(json[member: "summary"]?.scalarText?.contains("above the 100 % liquidation trigger") == true)
        let table = try runPM(["liquidate", try directory.write("again.json", Self.comfortable), "--format", "table"])
        #expect(table.status == 0 && table.stdout.contains("safe: margin ratio"))
    }

    /// A coin without a discount table (AVAX) still has a market: it is sold at the index less the 20 % maximum
    /// penalty, only as much as repays the USDT debt, and the insurance fund covers nothing.
    @Test func collateralWithoutATableRepaysTheDebt() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let request = #"{"simPos":[],"simAsset":[{"ccy":"AVAX","amt":"10000"},{"ccy":"USDT","amt":"-50000"}]}"#
        let report = try parseObject(try runPM(["liquidate", try directory.write("request.json", request), "--format", "json"]))
        let executed = (report[member: "actions"]?.arrayItems ?? []).filter { $0[member: "status"]?.scalarText == "executed" }
        #expect(executed.map { $0[member: "step"]?.scalarText } == ["COLLATERAL"])
        let sale = try #require(executed.first)
        let sold = -(try #require(sale[member: "cashChanges"]?[member: "AVAX"]?.doubleValue))
        let repaid = try #require(sale[member: "cashChanges"]?[member: "USDT"]?.doubleValue)
        let penalty = try #require(sale[member: "insuranceFund"]?[member: "AVAX"]?.doubleValue) / sold
        #expect(sold > 0 && sold < 10_000, "a partial sale: \(sold) AVAX")
        #expect(penalty >= 0.02 && penalty <= 0.20, "penalty \(penalty)")
        // The repayment is the AVAX sold at the index (12.35 USD) less the penalty, in USDT (0.99975 USD).
        #expect(isClose(repaid, sold * 12.35 * (1 - penalty) / 0.99975, relative: 1e-9))
        #expect(isClose(repaid, 50_000, relative: 1e-12), "exactly the debt")
        guard case .object(let fund)? = report[member: "insuranceFund"] else {
            Issue.record("no insuranceFund object")
            return
        }
        #expect(fund.keys == ["AVAX"], "the fund only receives the penalty: \(fund.keys)")
    }
}
