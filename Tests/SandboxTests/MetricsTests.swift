import Foundation
import MarginEngine
import MarginStore
import MarginTestSupport
import Metrics
import MetricsTestKit
import Testing

@testable import Sandbox

/// What the sandbox measures, recorded through swift-metrics (here into `TestMetrics`): orders and cancels by outcome
/// and code, group commits, rate-limit refusals, ticks, liquidations by step, the insurance fund (README, "Operating
/// pm serve").
@Suite struct MetricsTests {
    static let farBelowTheMarket = #"{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"limit","px":"10000","sz":"1"}"#

    @Test func ordersAndCancelsAreCountedByOutcomeAndCode() async throws {
        let metrics = TestMetrics()
        let sandbox = try SandboxHarness(metrics: SandboxMetrics(factory: metrics))
        let user = try await sandbox.account()
        let resting = await sandbox.call("POST", "/api/v5/trade/order", body: Self.farBelowTheMarket, as: user)
        #expect(resting.code == "0", "\(resting.envelope)")
        let unknown = await sandbox.call(
            "POST", "/api/v5/trade/order",
            body: #"{"instId":"NOPE-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"market","sz":"1"}"#, as: user)
        let code = try #require(unknown.first?[member: "sCode"]?.scalarText)
        #expect(code != "0")
        // A batch: one accepted, one refused for the same reason, in one submission (one group).
        let batch = await sandbox.call(
            "POST", "/api/v5/trade/batch-orders",
            body:
                "[\(Self.farBelowTheMarket),{\"instId\":\"NOPE-USDT-SWAP\",\"tdMode\":\"cross\",\"side\":\"buy\",\"ordType\":\"market\",\"sz\":\"1\"}]",
            as: user)
        #expect(batch.code == "2", "\(batch.envelope)")
        let ordId = try #require(resting.first?[member: "ordId"]?.scalarText)
        let cancelled = await sandbox.call(
            "POST", "/api/v5/trade/cancel-order", body: #"{"instId":"BTC-USDT-SWAP","ordId":"\#(ordId)"}"#, as: user)
        #expect(cancelled.code == "0", "\(cancelled.envelope)")
        let again = await sandbox.call(
            "POST", "/api/v5/trade/cancel-order", body: #"{"instId":"BTC-USDT-SWAP","ordId":"\#(ordId)"}"#, as: user)
        let cancelCode = try #require(again.first?[member: "sCode"]?.scalarText)
        #expect(cancelCode != "0")

        let name = SandboxMetrics.Name.self
        #expect(metrics.counterTotal(label: name.orders, dimensions: [("result", "accepted"), ("code", "0")]) == 2)
        #expect(metrics.counterTotal(label: name.orders, dimensions: [("result", "refused"), ("code", code)]) == 2)
        #expect(metrics.counterTotal(label: name.cancels, dimensions: [("result", "accepted"), ("code", "0")]) == 1)
        #expect(metrics.counterTotal(label: name.cancels, dimensions: [("result", "refused"), ("code", cancelCode)]) == 1)
        // Five submissions, each alone in its group; three stored something (a submission refused whole stores nothing).
        let groups = try metrics.expectRecorder(name.groupCommitSubmissions)
        #expect(groups.values == [1, 1, 1, 1, 1])
        #expect(try metrics.expectTimer(name.groupCommitDuration).values.count == 3)
    }

    @Test func rateLimitRefusalsAreCountedByScope() async throws {
        let metrics = TestMetrics()
        let sandbox = try SandboxHarness(rateLimit: 2, metrics: SandboxMetrics(factory: metrics))
        let user = try await sandbox.account()
        // A burst of 2 per bucket (the clock moves 1 ms per call): 4 private calls, 2 refused; 3 public calls, 1 refused.
        var refusedPrivate: Int64 = 0
        var refusedPublic: Int64 = 0
        for _ in 0..<4 where await sandbox.call("GET", "/api/v5/account/balance", as: user).code == "50011" { refusedPrivate += 1 }
        for _ in 0..<3 where await sandbox.call("GET", "/api/v5/public/time", as: nil).code == "50011" { refusedPublic += 1 }
        #expect(refusedPrivate == 2 && refusedPublic == 1)
        #expect(metrics.counterTotal(label: SandboxMetrics.Name.rateLimitRefusals, dimensions: [("scope", "private")]) == refusedPrivate)
        #expect(metrics.counterTotal(label: SandboxMetrics.Name.rateLimitRefusals, dimensions: [("scope", "public")]) == refusedPublic)
    }

    @Test func aLiquidationCountsTheStepsThePlannerExecutedAndTheFund() async throws {
        let metrics = TestMetrics()
        let sandbox = try SandboxHarness(metrics: SandboxMetrics(factory: metrics))
        let user = try await sandbox.account([("USDT", "20000")])
        try await sandbox.exchange.acknowledgePortfolioMargin(uid: user.uid)
        #expect(await sandbox.call("POST", "/api/v5/account/set-account-level", body: #"{"acctLv":"4"}"#, as: user).code == "0")
        let placed = await sandbox.call(
            "POST", "/api/v5/trade/order",
            body: #"{"instId":"BTC-USDT-SWAP","tdMode":"cross","side":"buy","ordType":"market","sz":"100"}"#, as: user)
        #expect(placed.code == "0", "\(placed.envelope)")
        let portfolio = await sandbox.exchange.portfolio(try #require(await sandbox.exchange.account(user.uid)))
        let shocked = try Fixtures.calmMarket.shocked(by: -0.12, onlyCoin: "BTC")
        let report = try await sandbox.exchange.advance(to: shocked)
        #expect(report.liquidatedAccounts == [user.uid])
        let plan = try LiquidationPlanner.plan(portfolio, catalog: Fixtures.catalog, market: shocked, parameters: Fixtures.parameters)
        var expected: [String: Int64] = [:]
        for action in plan.executedActions { expected[action.step.rawValue, default: 0] += 1 }
        #expect(!expected.isEmpty)
        var counted: [String: Int64] = [:]
        for counter in metrics.counters(label: SandboxMetrics.Name.liquidationSteps) {
            let step = try #require(counter.dimensions.first { $0.0 == "step" }?.1)
            counted[step, default: 0] += counter.totalValue
        }
        #expect(counted == expected)
        #expect(metrics.counterTotal(label: SandboxMetrics.Name.liquidatedAccounts, dimensions: [("mode", "portfolio")]) == 1)
        let fund = await sandbox.exchange.insuranceFundBalances()["USDT"] ?? .zero
        #expect(try metrics.expectGauge(SandboxMetrics.Name.insuranceFund, [("ccy", "USDT")]).lastValue == fund.doubleValue)
        // One tick, timed, with the accounts it re-margined.
        #expect(try metrics.expectTimer(SandboxMetrics.Name.tickDuration).values.count == 1)
        #expect(try metrics.expectRecorder(SandboxMetrics.Name.tickRemarginedAccounts).values == [Double(report.remarginedAccounts)])
    }
}
