import Foundation
import MarginTestSupport
import PropertyBased
import Testing

@testable import MarginEngine

/// Classic margin, PM eligibility and mode switching (docs/methodology/03-account.md §5–§6).
@Suite struct AccountModeTests {
    static let market = Fixtures.calmMarket
    static let parameters = Fixtures.parameters

    static func position(_ id: String, _ size: Double, leverage: Double? = nil) throws -> Position {
        let instrument = try Fixtures.catalog.instrument(id, path: "test")
        return Position(
            instrument: instrument, sizeContracts: size, averagePrice: try market.market(for: instrument, path: "").markPrice,
            leverage: leverage)
    }

    /// Classic perpetuals: the whole position at its notional's tier; IMR = notional / leverage, capped.
    @Test(arguments: [(-100.0, 20.0), (-1_000.0, 75.0), (-3_000.0, 10.0), (-30_000.0, 8.0)])
    func classicPerpetualUsesItsTier(size: Double, leverage: Double) throws {
        let result = try ClassicMargin.compute(
            Portfolio(positions: [try Self.position("BTC-USDT-SWAP", size, leverage: leverage)], cashBalances: ["USDT": 10_000_000]),
            market: Self.market, parameters: Self.parameters)
        let position = try #require(result.positions.first)
        let notional = position.valuation.notionalUSD
        let tiers: [(Double, Double, Double)] = [
            (500_000, 0.004, 100), (2_000_000, 0.006, 50), (5_000_000, 0.01, 33),
            (20_000_000, 0.02, 20), (50_000_000, 0.05, 10), (.infinity, 0.10, 5),
        ]
        let tier = try #require(tiers.first { notional <= $0.0 })
        #expect(isClose(position.mmrUSD, notional * tier.1, relative: 1e-12))
        #expect(position.leverage == min(leverage, tier.2))
        #expect(position.leverageCapped == (leverage > tier.2))
        #expect(isClose(position.imrUSD, notional / min(leverage, tier.2), relative: 1e-12))
        #expect(isClose(result.totalMmrUSD, position.mmrUSD + result.borrowMmrUSD, relative: 1e-12))
        #expect(isClose(result.marginRatio ?? 0, result.adjustedEquityUSD / result.totalMmrUSD, relative: 1e-12))
    }

    /// Classic options: short calls and puts per OKX's coin formula at the coin's index; long options need nothing.
    @Test(arguments: ["BTC-USD-260327-100000-C", "BTC-USD-260327-80000-P", "ETH-USD-260327-3000-C"])
    func classicOptionMargin(id: String) throws {
        let short = try Self.position(id, -10)
        let result = try ClassicMargin.compute(Portfolio(positions: [short]), market: Self.market, parameters: Self.parameters)
        let long = try ClassicMargin.compute(
            Portfolio(positions: [try Self.position(id, 5)]), market: Self.market, parameters: Self.parameters)
        let shortResult = try #require(result.positions.first)
        let longResult = try #require(long.positions.first)
        let market = shortResult.market
        let option = try #require(market.option)
        let strike = try #require(short.instrument.id.strikeUSD)
        let isCall = short.instrument.id.optionKind == .call
        let coefficients = Self.parameters.classicOptions[short.instrument.underlying] ?? Self.parameters.classicOptionOther
        let otm = max(isCall ? strike - option.forwardUSD : option.forwardUSD - strike, 0)
        let coins = 10 * short.instrument.coinsPerContract
        let imr = (max(coefficients.a, coefficients.b - otm / option.forwardUSD) + market.markPrice) * coins * market.indexUSD
        let mmr =
            ((isCall ? coefficients.c : max(coefficients.c, coefficients.c * market.markPrice)) + market.markPrice) * coins
            * market.indexUSD
        #expect(isClose(shortResult.imrUSD, imr, relative: 1e-12))
        #expect(isClose(shortResult.mmrUSD, mmr, relative: 1e-12))
        #expect(longResult.imrUSD == 0 && longResult.mmrUSD == 0)
    }

    /// Eligibility: every failing reason is listed.
    /// Found by fuzz-position-builder (fuzz/corpus/position-builder/regression-precheck-huge-avgpx.json): an average
    /// price of 8.8e76 made equity about −2.2e77 USD, and formatting it in a refusal reason trapped converting cents
    /// to Int64. Reasons now hold any finite amount.
    @Test(arguments: [0.0, 1234.5, -1_234_567.891, 9.2e15, -9.2e16, 2.2e77, -1.7e308])
    func refusalReasonsFormatAnyFiniteAmount(_ amount: Double) {
        let text = MoneyText.usd(amount)
        #expect(!text.isEmpty && !text.contains("inf") && !text.contains("nan"))
        if abs(amount) < 1e15 { #expect(Double(text.replacingOccurrences(of: ",", with: "")) == (amount * 100).rounded() / 100) }
    }

    /// The same input no longer reaches the pre-check: the request refuses an average price above 1e12.
    @Test func anAbsurdAveragePriceIsRefusedNamingTheField() {
        #expect(throws: EngineError.self) {
            try PositionBuilderRequest(bytes: Array(#"{"simPos":[{"instId":"BTC-USDT-SWAP","pos":"250","avgPx":"8.8e76"}]}"#.utf8))
        }
    }

    @Test func portfolioMarginEligibilityReasons() throws {
        let small = Portfolio(cashBalances: ["USDT": 5_000])
        let refused = try AccountModes.portfolioMarginEligibility(
            small, acknowledged: false, market: Self.market, parameters: Self.parameters)
        #expect(!refused.allowed)
        #expect(refused.reasons.count == 2)
        #expect(refused.reasons.contains { $0.contains("10,000.00 USD minimum") })
        #expect(refused.reasons.contains { $0.contains("acknowledgement") })
        let rich = Portfolio(cashBalances: ["USDT": 50_000])
        #expect(
            try AccountModes.portfolioMarginEligibility(rich, acknowledged: true, market: Self.market, parameters: Self.parameters).allowed)
        // Enough equity, acknowledged, but a short option book whose PM IMR exceeds the adjusted equity.
        let overLevered = Portfolio(positions: [try Self.position("BTC-USD-260327-90000-C", -500)], cashBalances: ["USDT": 50_000])
        let imrShort = try AccountModes.portfolioMarginEligibility(
            overLevered, acknowledged: true, market: Self.market, parameters: Self.parameters)
        #expect(!imrShort.allowed)
        #expect(imrShort.reasons.count == 1 && imrShort.reasons[0].contains("total IMR"))
    }

    /// The pre-check reports before/after figures, refuses a switch that leaves adjEq < totalImr, and lists
    /// positions whose leverage the classic tiers would cut.
    @Test func precheckToClassic() throws {
        // Hedged perpetual + spot: cheap under PM, expensive under classic at 100x requested leverage.
        let portfolio = Portfolio(
            positions: [try Self.position("BTC-USDT-SWAP", -5_000, leverage: 100)], cashBalances: ["BTC": 50, "USDT": 1_000])
        let check = try AccountModes.precheck(
            portfolio, from: .portfolioMargin, to: .classic, acknowledged: true, market: Self.market, parameters: Self.parameters)
        let classic = try ClassicMargin.compute(portfolio, market: Self.market, parameters: Self.parameters)
        #expect(check.before.level == .portfolioMargin && check.after.level == .classic)
        #expect(isClose(check.after.totalImrUSD, classic.totalImrUSD, relative: 0))
        #expect(check.failingPositions.map(\.instrumentID) == ["BTC-USDT-SWAP"])
        #expect(check.allowed == (classic.adjustedEquityUSD >= classic.totalImrUSD))
        // Force a refusal: borrow so much USDT that classic IMR (position IMR + borrowing IMR) exceeds adjEq.
        let strained = Portfolio(
            positions: [try Self.position("BTC-USDT-SWAP", -5_000, leverage: 3)], cashBalances: ["BTC": 50, "USDT": -3_000_000])
        let refused = try AccountModes.precheck(
            strained, from: .portfolioMargin, to: .classic, acknowledged: true, market: Self.market, parameters: Self.parameters)
        #expect(!refused.allowed)
        #expect(refused.reasons.contains { $0.contains("under classic margin") })
        #expect(refused.after.adjustedEquityUSD < refused.after.totalImrUSD)
        // Blocking orders from the caller are reasons too.
        let blocked = try AccountModes.precheck(
            portfolio, from: .portfolioMargin, to: .classic, acknowledged: true,
            blockingOrders: ["open order 42 is an isolated-margin order"], market: Self.market, parameters: Self.parameters)
        #expect(blocked.reasons.last == "open order 42 is an isolated-margin order" && !blocked.allowed)
    }

    /// Switching PM → classic → PM with no market change returns the same figures.
    @Test func switchingRoundTripKeepsTheFigures() async {
        let universe = RandomPortfolios(catalog: Fixtures.catalog, market: Self.market, parameters: Self.parameters)
        await propertyCheck(count: 25, input: Gen.int(in: 0...Int.max)) { seed in
            var portfolio = universe.portfolio(seed: UInt64(seed), maximumPositions: 4)
            portfolio.cashBalances["USDT", default: 0] += 50_000_000
            let start = AccountModeState(level: .portfolioMargin, portfolio: portfolio, acknowledged: true)
            let before = try ModeFigures.compute(start.portfolio, level: start.level, market: Self.market, parameters: Self.parameters)
            let classic = try start.switched(to: .classic, market: Self.market, parameters: Self.parameters).get()
            let back = try classic.switched(to: .portfolioMargin, market: Self.market, parameters: Self.parameters).get()
            #expect(back.level == .portfolioMargin)
            let after = try ModeFigures.compute(back.portfolio, level: back.level, market: Self.market, parameters: Self.parameters)
            #expect(after == before)
        }
    }

    @Test func switchWithoutAcknowledgementIsRefusedWithThePrecheck() throws {
        let state = AccountModeState(level: .classic, portfolio: Portfolio(cashBalances: ["USDT": 50_000]))
        guard case .failure(let refusal) = try state.switched(to: .portfolioMargin, market: Self.market, parameters: Self.parameters) else {
            Issue.record("switch without acknowledgement was accepted")
            return
        }
        #expect(refusal.precheck.reasons == ["the portfolio-margin risk acknowledgement has not been recorded"])
        let acknowledged = state.acknowledgingRisks()
        #expect(
            (try? acknowledged.switched(to: .portfolioMargin, market: Self.market, parameters: Self.parameters).get())?.level
                == .portfolioMargin)
    }

    /// PM is never above classic for a delta-hedged perpetual plus spot — where the default parameters allow it.
    ///
    /// With `okx-2025-01` the claim holds for a hedge with no stablecoin mismatch (a coin-margined perpetual
    /// against the coin) whenever classic's rate for the position's tier is at least PM's minimum charge
    /// (MR7): every tier-2 and tier-3 size, and tier-1 sizes above the first classic tier (500,000 USD, where
    /// classic's 0.4 % is below MR7's 0.45 %). For USDT- or USDC-margined hedges MR9 charges the depeg risk
    /// that classic ignores; ``stablecoinHedgeCostsMoreUnderPortfolioMargin()`` pins that case.
    @Test func portfolioMarginNeverAboveClassicForHedgedInversePerpetual() async {
        let coins = ["BTC", "ETH", "SOL", "LTC", "AVAX"]
        await propertyCheck(count: 60, input: Gen.int(in: 0...coins.count - 1), Gen.double(in: 0...1)) { which, sizeDraw in
            let coin = coins[which]
            let instrument = try Fixtures.catalog.instrument("\(coin)-USD-SWAP", path: "test")
            let lowestNotional = Self.parameters.tier(of: coin) == .tier1 ? 600_000.0 : 2_000.0
            let notional = lowestNotional * pow(10, sizeDraw * 2)  // up to 100× the lowest
            let contracts = -(notional / instrument.contractValue).rounded()
            let market = try Self.market.market(for: instrument, path: "")
            let position = Position(instrument: instrument, sizeContracts: contracts, averagePrice: market.markPrice)
            let coinsHedged = -contracts * instrument.contractValue / market.markPrice
            let portfolio = Portfolio(positions: [position], cashBalances: [coin: coinsHedged])
            let pm = try PortfolioMargin.compute(portfolio, market: Self.market, parameters: Self.parameters)
            let classic = try ClassicMargin.compute(portfolio, market: Self.market, parameters: Self.parameters)
            #expect(pm.units.first?.spotInUse.map { isClose($0.coins, coinsHedged, relative: 1e-12) } == true)
            #expect(
                pm.totalMmrUSD <= classic.totalMmrUSD, "\(coin) notional \(notional): PM \(pm.totalMmrUSD) > classic \(classic.totalMmrUSD)"
            )
        }
    }

    /// The counterexample the default parameters produce: a USDT-margined short hedged with spot pays MR9 for
    /// the USDT/USD mismatch under PM, which classic does not charge; without MR9 PM would be below classic.
    @Test func stablecoinHedgeCostsMoreUnderPortfolioMargin() throws {
        let portfolio = Portfolio(positions: [try Self.position("BTC-USDT-SWAP", -500)], cashBalances: ["BTC": 5])
        let pm = try PortfolioMargin.compute(portfolio, market: Self.market, parameters: Self.parameters)
        let classic = try ClassicMargin.compute(portfolio, market: Self.market, parameters: Self.parameters)
        let unit = try #require(pm.units.first)
        #expect(unit.components.dominant == .mr9)
        #expect(pm.totalMmrUSD > classic.totalMmrUSD)
        #expect(pm.totalMmrUSD - unit.components.mr9 <= classic.totalMmrUSD)
    }
}
