import MarginEngine
import MarginTestSupport
import Testing

/// The defects an independent audit found in the margin and liquidation rules, each with the example that
/// showed it (`Methodology.md` names the rule each one now follows).
@Suite struct AuditFindingsTests {
    static let parameters = Fixtures.parameters
    static let catalog = Fixtures.catalog
    static let market = Fixtures.calmMarket

    static func build(_ text: String) throws -> JSONValue {
        let request = try PositionBuilderRequest(bytes: Array(text.utf8))
        return try PositionBuilder.build(request, catalog: catalog, market: market, parameters: parameters)
    }

    static func number(_ value: JSONValue?, _ key: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> Double {
        try #require(value?[member: key]?.doubleValue, "\(key)", sourceLocation: sourceLocation)
    }

    static func position(_ id: String, _ size: Double, averagePrice: Double? = nil) throws -> Position {
        let instrument = try catalog.instrument(id, path: "test")
        return Position(
            instrument: instrument, sizeContracts: size,
            averagePrice: try averagePrice ?? market.market(for: instrument, path: "").markPrice)
    }

    static func plan(_ portfolio: Portfolio, parameters: MarginParameters = parameters) throws -> LiquidationPlan {
        try LiquidationPlanner.plan(portfolio, catalog: catalog, market: market, parameters: parameters)
    }

    // MARK: 1. Collateral without a discount table

    /// Checks a collateral sale's price: what it repays is the coins sold at the index less a penalty
    /// between the parameter set's minimum and maximum, and the penalty goes to the insurance fund.
    static func expectFairSale(_ action: LiquidationAction, sold currency: String, sourceLocation: SourceLocation = #_sourceLocation) throws
    {
        let soldCoins = -(action.cashChanges[currency] ?? 0)
        let repaidUSDT = action.cashChanges["USDT"] ?? 0
        #expect(soldCoins > 0 && repaidUSDT > 0, "\(action.reason)", sourceLocation: sourceLocation)
        let soldUSD = soldCoins * (try market.indexUSD(currency))
        let penalty = 1 - repaidUSDT * (try market.indexUSD("USDT")) / soldUSD
        #expect(penalty >= parameters.liquidationPenaltyMinimum - 1e-12, "penalty \(penalty)", sourceLocation: sourceLocation)
        #expect(penalty <= parameters.liquidationPenaltyMaximum + 1e-12, "penalty \(penalty)", sourceLocation: sourceLocation)
        #expect(isClose(action.insuranceFundChanges[currency] ?? 0, soldCoins * penalty, relative: 1e-9), sourceLocation: sourceLocation)
    }

    @Test("collateral without a discount table is sold at the index less the 20 % maximum penalty, only as much as repays the debt")
    func collateralWithoutATableRepaysTheDebt() throws {
        let plan = try Self.plan(Portfolio(cashBalances: ["AVAX": 10_000, "USDT": -50_000]))
        #expect(plan.triggered)
        let sales = plan.executedActions.filter { $0.step == .collateral }
        #expect(sales.count == 1, "\(plan.actions.map(\.reason))")
        let sale = try #require(sales.first)
        try Self.expectFairSale(sale, sold: "AVAX")
        // AVAX has no table: the maximum penalty applies.
        let sold = -(sale.cashChanges["AVAX"] ?? 0)
        #expect(isClose(sale.insuranceFundChanges["AVAX"] ?? 0, 0.20 * sold, relative: 1e-9))
        #expect(sold < 10_000 * 0.6, "a partial sale: \(sold) AVAX of 10,000")
        #expect(abs(plan.finalPortfolio.cashBalances["USDT"] ?? 0) < 1e-6, "the debt is repaid")
        #expect(!plan.actions.contains { $0.step == .deficit }, "no insurance-fund cover of a debt the collateral repays")
        #expect((plan.insuranceFundChanges["USDT"] ?? 0) >= 0)
    }

    @Test("collateral is sold cheapest discount first: AVAX (no table) before BTC (98 %)")
    func cheapestDiscountFirst() throws {
        let plan = try Self.plan(Portfolio(cashBalances: ["AVAX": 10_000, "BTC": 0.5, "USDT": -50_000]))
        let sales = plan.executedActions.filter { $0.step == .collateral }
        #expect(sales.first?.cashChanges["AVAX"].map { $0 < 0 } == true, "\(sales.map(\.reason))")
        #expect(plan.finalPortfolio.cashBalances["BTC"] == 0.5, "BTC is not needed")
        #expect(abs(plan.finalPortfolio.cashBalances["USDT"] ?? 0) < 1e-6)
    }

    @Test("when the first collateral does not cover the debt the next coin is sold too, and the fund covers only the true deficit")
    func aSecondCoinIsSold() throws {
        let plan = try Self.plan(Portfolio(cashBalances: ["AVAX": 500, "BTC": 0.5, "USDT": -50_000]))
        let sales = plan.executedActions.filter { $0.step == .collateral }
        try #require(sales.count == 2, "\(plan.actions.map(\.reason))")
        try Self.expectFairSale(sales[0], sold: "AVAX")
        try Self.expectFairSale(sales[1], sold: "BTC")
        // BTC's first tier discounts 98 %: a 2 % penalty.
        let btcSold = -(sales[1].cashChanges["BTC"] ?? 0)
        #expect(isClose(sales[1].insuranceFundChanges["BTC"] ?? 0, 0.02 * btcSold, relative: 1e-9))
        #expect(abs(plan.finalPortfolio.cashBalances["AVAX"] ?? 0) < 1e-9)
        #expect(abs(plan.finalPortfolio.cashBalances["BTC"] ?? 0) < 1e-12)
        // What the collateral fetches after penalties falls short of the debt by exactly what the fund covers.
        let usdt = try Self.market.indexUSD("USDT")
        let fetched = (500 * 0.8 * (try Self.market.indexUSD("AVAX")) + 0.5 * 0.98 * (try Self.market.indexUSD("BTC"))) / usdt
        let deficit = try #require(plan.executedActions.first { $0.step == .deficit })
        #expect(isClose(-(deficit.insuranceFundChanges["USDT"] ?? 0), 50_000 - fetched, relative: 1e-9))
    }

    // MARK: 2. Classic leverage defaults to 1

    @Test("a classic Position Builder request without lever means leverage 1, as OKX documents")
    func classicLeverageDefaultsToOne() throws {
        let response = try Self.build(
            #"{"acctLv":"3","simPos":[{"instId":"BTC-USDT-SWAP","pos":"100"}],"simAsset":[{"ccy":"USDT","amt":"100000"}]}"#)
        let position = try #require(response[member: "positions"]?.arrayItems.first)
        let notional = try Self.number(position, "notionalUsd")
        #expect(isClose(try Self.number(response, "totalImr"), notional, relative: 1e-12), "IMR = notional / 1")
        #expect(notional > 88_000 && notional < 89_000)
        #expect(position[member: "lever"]?.doubleValue == 1)
    }

    // MARK: 3. eq is adjusted equity

    @Test("eq is OKX's adjusted equity, eqUsd the undiscounted sum, and acctLever divides by eq")
    func equityIsAdjusted() throws {
        let response = try Self.build(
            #"{"simPos":[{"instId":"BTC-USDT-SWAP","pos":"10"}],"simAsset":[{"ccy":"BTC","amt":"2"},{"ccy":"AVAX","amt":"1000"}]}"#)
        let eq = try Self.number(response, "eq")
        let eqUSD = try Self.number(response, "eqUsd")
        #expect(eq == (try Self.number(response, "adjEq")))
        let btc = try Self.market.indexUSD("BTC")
        let avax = try Self.market.indexUSD("AVAX")
        #expect(isClose(eqUSD, 2 * btc + 1_000 * avax, relative: 1e-9), "undiscounted, AVAX included")
        #expect(isClose(eq, 2 * 0.98 * btc, relative: 1e-6), "BTC at 98 %, AVAX (no table) at 0")
        let notional = try #require(response[member: "riskUnitData"]?.arrayItems.first?[member: "portfolios"]?.arrayItems.first)
        #expect(isClose(try Self.number(response, "acctLever"), try Self.number(notional, "notionalUsd") / eq, relative: 1e-12))
    }

    // MARK: 5. Classic long options are isolated

    @Test("classic margin does not count a long option's value as cross margin; portfolio margin does")
    func classicLongOptionsAreIsolated() throws {
        let call = try Self.position("BTC-USD-260327-100000-C", 100)
        let portfolio = Portfolio(positions: [call], cashBalances: ["USDT": 20_000])
        let optionUSD = 100 * call.instrument.coinsPerContract * call.averagePrice * (try Self.market.indexUSD("BTC"))
        let usdt = 20_000 * (try Self.market.indexUSD("USDT"))
        let classic = try ClassicMargin.compute(portfolio, market: Self.market, parameters: Self.parameters)
        let pm = try PortfolioMargin.compute(portfolio, market: Self.market, parameters: Self.parameters)
        #expect(optionUSD > 1_000)
        #expect(isClose(classic.adjustedEquityUSD, usdt, relative: 1e-12))
        #expect(isClose(pm.adjustedEquityUSD, usdt + 0.98 * optionUSD, relative: 1e-9))
        #expect(isClose(classic.equityUSD, pm.equityUSD, relative: 1e-12), "net equity still counts the option")
        let btc = try #require(classic.currencies.first { $0.currency == "BTC" })
        #expect(btc.availableEquity == 0, "the option's BTC value is not available margin")
    }

    // MARK: 6. DDH1 when MR7 sets the MMR

    @Test("DDH1 starts when MR9 is the dominant scenario component, even if MR7 sets the unit's MMR")
    func ddh1WhenMinimumChargeDominates() throws {
        var portfolio = Portfolio(
            positions: [try Self.position("BTC-USDT-SWAP", 100), try Self.position("BTC-USD-SWAP", -885)], cashBalances: ["USDT": 10_000])
        let before = try PortfolioMargin.compute(portfolio, market: Self.market, parameters: Self.parameters)
        let unit = try #require(before.units.first)
        #expect(unit.components.dominant == .mr7)
        #expect(unit.components.dominantScenario == .mr9)
        // Pushed below 100 %: equity at 90 % of the MMR.
        portfolio.cashBalances["USDT"] = 10_000 - (before.adjustedEquityUSD - 0.9 * before.totalMmrUSD) / (try Self.market.indexUSD("USDT"))
        let plan = try Self.plan(portfolio)
        #expect(plan.triggered)
        #expect(
            plan.executedActions.first?.step == .ddh1, "\(plan.actions.map { "\($0.step.rawValue) \($0.status.rawValue): \($0.reason)" })")
    }

    // MARK: 7. One instrument listed twice

    @Test("lines of one instrument are netted before margining: +100 and −100 BTC-USDT-SWAP need nothing")
    func duplicateLinesAreNetted() throws {
        let response = try Self.build(
            #"{"simPos":[{"instId":"BTC-USDT-SWAP","pos":"100","avgPx":"88000"},{"instId":"BTC-USDT-SWAP","pos":"-100","avgPx":"89000"}],"simAsset":[{"ccy":"USDT","amt":"10000"}]}"#
        )
        #expect(try Self.number(response, "totalMmr") == 0)
        // The locked-in loss of 100 contracts × 0.01 BTC × 1,000 USDT stays in equity.
        #expect(isClose(try Self.number(response, "eqUsd"), (10_000 + 1_000) * (try Self.market.indexUSD("USDT")), relative: 1e-12))
        let partly = try Self.build(
            #"{"simPos":[{"instId":"BTC-USDT-SWAP","pos":"100"},{"instId":"BTC-USDT-SWAP","pos":"-40"}],"simAsset":[{"ccy":"USDT","amt":"10000"}]}"#
        )
        let single = try Self.build(#"{"simPos":[{"instId":"BTC-USDT-SWAP","pos":"60"}],"simAsset":[{"ccy":"USDT","amt":"10000"}]}"#)
        #expect(try Self.number(partly, "totalMmr") == (try Self.number(single, "totalMmr")))
        let lines = partly[member: "riskUnitData"]?.arrayItems.first?[member: "portfolios"]?.arrayItems ?? []
        #expect(lines.count == 1 && lines.first?[member: "amt"]?.doubleValue == 60)
    }

    // MARK: 8. Basis parameters and NaN

    @Test("a NaN in a unit's scenario P&L is an error, never silently dropped by min or max")
    func notANumberIsRefused() throws {
        for index in [0, ScenarioLayout.mr6Start, ScenarioLayout.mr4Down, ScenarioLayout.mr2, ScenarioLayout.mr5Up] {
            var exposure = UnitExposure.empty
            exposure.scenarioPnLUSD[index] = .nan
            #expect(throws: EngineError.self, "cell \(index)") {
                try RiskUnitComponents(exposure, tier: .tier1, market: Self.market, parameters: Self.parameters)
            }
        }
    }

    // MARK: 9. Basis step tries every pair

    @Test("the basis step tries a unit's other calendar pairs after one that cannot be reduced")
    func basisTriesTheNextPair() throws {
        var portfolio = Portfolio(
            positions: [
                try Self.position("BTC-USDT-260327", 100), try Self.position("BTC-USDT-261225", 300),
                try Self.position("BTC-USD-SWAP", -3_540), try Self.position("BTC-USD-260626", -3_540),
            ], cashBalances: ["USDT": 0])
        let before = try PortfolioMargin.compute(portfolio, market: Self.market, parameters: Self.parameters)
        portfolio.cashBalances["USDT"] = (0.9 * before.totalMmrUSD - before.adjustedEquityUSD) / (try Self.market.indexUSD("USDT"))
        let basis = try Self.plan(portfolio).actions.filter { $0.step == .basis }
        let log = basis.map { "\($0.status.rawValue) \($0.instrumentIDs)" }
        // The farthest pair (December future against the perpetual) would not raise the ratio ...
        #expect(basis.first?.status == .skipped && basis.first?.instrumentIDs == ["BTC-USDT-261225", "BTC-USD-SWAP"], "\(log)")
        // ... and the next pair of the same unit is still reduced.
        #expect(basis.dropFirst().contains { $0.status == .executed }, "\(log)")
    }

    // MARK: 10. Implied volatility near intrinsic value

    @Test("an in-the-money option marked at (or within rounding of) intrinsic value gets a volatility, not a refusal")
    func impliedVolatilityNearIntrinsic() throws {
        let forward = 88_000.0
        let years = 0.25
        func price(_ strike: Double, _ sigma: Double) -> Double {
            Black76.price(.call, forward: forward, strike: strike, volatility: sigma, timeToExpiryYears: years)
        }
        // Between intrinsic and the value at the lowest volatility: the lowest volatility.
        let nearStrike = 87_000.0
        let floorValue = price(nearStrike, ImpliedVolatility.minimumVolatility)
        #expect(floorValue > forward - nearStrike)
        let between = (forward - nearStrike + floorValue) / 2
        #expect(
            try ImpliedVolatility.solve(price: between, kind: .call, forward: forward, strike: nearStrike, timeToExpiryYears: years)
                == ImpliedVolatility.minimumVolatility)
        // Deep in the money, at intrinsic or a rounding below it: a volatility that reproduces the price.
        let deepStrike = 60_000.0
        let intrinsic = forward - deepStrike
        for mark in [intrinsic, intrinsic * (1 - 1e-12)] {
            let sigma = try ImpliedVolatility.solve(
                price: mark, kind: .call, forward: forward, strike: deepStrike, timeToExpiryYears: years)
            #expect(isClose(price(deepStrike, sigma), mark, relative: 1e-12), "mark \(mark) → σ \(sigma)")
        }
        // Clearly below intrinsic is still an arbitrage and refused.
        #expect(throws: ImpliedVolatilityError.self) {
            try ImpliedVolatility.solve(price: intrinsic - 1, kind: .call, forward: forward, strike: deepStrike, timeToExpiryYears: years)
        }
        // Through a snapshot that has only the mark: the position is priced, not refused.
        let id = "BTC-USD-260327-60000-C"
        let indexUSD = try Self.market.indexUSD("BTC")
        let instrument = try Self.catalog.instrument(id, path: "test")
        let forwardUSD = try #require(try Self.market.market(for: instrument, path: "").option?.forwardUSD)
        let snapshot = try MarketSnapshot(
            valuationTime: Self.market.valuationTime, indices: ["BTC-USD": indexUSD, "USDT-USD": 1, "USDC-USD": 1],
            marks: [id: MarkQuote(markPrice: (forwardUSD - 60_000) / indexUSD, forwardUSD: forwardUSD)])
        let resolved = try snapshot.market(for: instrument, path: "")
        let option = try #require(resolved.option)
        let model = Black76.price(
            .call, forward: forwardUSD, strike: 60_000, volatility: option.volatility, timeToExpiryYears: option.timeToExpiryYears)
        #expect(isClose(model, forwardUSD - 60_000, relative: 1e-12))
    }

    // MARK: 11. MR1 tie-break

    @Test("MR1's worst cell: among equal losses the smaller move wins, whatever its volatility state")
    func worstCellTieGoesToTheSmallerMove() throws {
        var exposure = UnitExposure.empty
        // −12 % with volatility up and −4 % with volatility down lose the same.
        exposure.scenarioPnLUSD[ScenarioLayout.mr1Index(move: 0, state: .up)] = -100
        exposure.scenarioPnLUSD[ScenarioLayout.mr1Index(move: 2, state: .down)] = -100
        let components = try RiskUnitComponents(exposure, tier: .tier1, market: Self.market, parameters: Self.parameters)
        #expect(components.mr1 == 100)
        #expect(components.mr1Worst.spotMove == -0.04)
        #expect(components.mr1Worst.volatilityState == .down)
    }
}
