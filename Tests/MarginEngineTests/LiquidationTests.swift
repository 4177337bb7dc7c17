import MarginEngine
import MarginTestSupport
import PropertyBased
import Testing

/// The liquidation planner (docs/methodology/04-liquidation.md): each step on a portfolio built to trigger it, and the
/// plan's invariants on random under-margined portfolios.
@Suite struct LiquidationTests {
    static let parameters = Fixtures.parameters
    static let catalog = Fixtures.catalog

    static func position(_ id: String, _ size: Double, market: MarketSnapshot, averagePrice: Double? = nil) throws -> Position {
        let instrument = try catalog.instrument(id, path: "test")
        return Position(
            instrument: instrument, sizeContracts: size,
            averagePrice: try averagePrice ?? market.market(for: instrument, path: "").markPrice)
    }

    /// Adds USDT so that the account's margin ratio is about `ratio` (two Newton-like passes).
    static func funded(_ portfolio: Portfolio, toRatio ratio: Double, market: MarketSnapshot) throws -> Portfolio {
        var funded = portfolio
        for _ in 0..<3 {
            let result = try PortfolioMargin.compute(funded, market: market, parameters: parameters)
            let usdtUSD = try market.indexUSD("USDT")
            funded.cashBalances["USDT", default: 0] += (ratio * result.totalMmrUSD - result.adjustedEquityUSD) / usdtUSD
        }
        return funded
    }

    static func plan(_ portfolio: Portfolio, market: MarketSnapshot) throws -> LiquidationPlan {
        try LiquidationPlanner.plan(portfolio, catalog: catalog, market: market, parameters: parameters)
    }

    /// Common checks of a triggered plan that should restore the account.
    static func expectRestored(_ plan: LiquidationPlan, firstStep: LiquidationStep, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(plan.triggered, sourceLocation: sourceLocation)
        #expect(
            plan.executedActions.first?.step == firstStep, "steps: \(plan.actions.map { "\($0.step.rawValue)/\($0.status.rawValue)" })",
            sourceLocation: sourceLocation)
        #expect((plan.after.marginRatio ?? .infinity) > parameters.liquidationStopRatio, "\(plan.summary)", sourceLocation: sourceLocation)
        for action in plan.executedActions {
            #expect(
                (action.ratioAfter ?? .infinity) > (action.ratioBefore ?? .infinity), "\(action.reason)", sourceLocation: sourceLocation)
        }
    }

    /// DDH1: a USDT-margined long hedged by a coin-margined short while USDT trades at 0.90.
    @Test func ddh1ReducesADepeggedStablecoinHedge() throws {
        let market = try MarketSnapshot(
            valuationTime: Fixtures.calmMarket.valuationTime, indices: ["BTC-USD": 90_000, "USDT-USD": 0.90, "USDC-USD": 1],
            marks: ["BTC-USDT-SWAP": MarkQuote(markPrice: 100_010), "BTC-USD-SWAP": MarkQuote(markPrice: 90_005)])
        let portfolio = try Self.funded(
            Portfolio(positions: [
                try Self.position("BTC-USDT-SWAP", 1_000, market: market),
                try Self.position("BTC-USD-SWAP", -9_000, market: market),
            ]), toRatio: 0.9, market: market)
        let before = try PortfolioMargin.compute(portfolio, market: market, parameters: Self.parameters)
        #expect(before.units.first?.components.dominant == .mr9)
        let plan = try Self.plan(portfolio, market: market)
        Self.expectRestored(plan, firstStep: .ddh1)
        let first = try #require(plan.executedActions.first)
        #expect(Set(first.fills.map(\.instrumentID)) == ["BTC-USDT-SWAP", "BTC-USD-SWAP"])
        #expect(first.fills.allSatisfy { $0.realizedPnL.isFinite })
        // Both legs shrink by about the same USD delta, so the unit's net delta barely moves.
        let after = try #require(plan.after.units.first)
        #expect(abs(after.greeks.deltaCash) < 0.01 * 900_000)
        #expect(after.components.mr9 < before.units[0].components.mr9)
    }

    /// DDH2: a short strangle hit by a 10 % fall gets delta-hedged with the USDT perpetual.
    @Test func ddh2DeltaHedgesAShortStrangle() throws {
        let market = try Fixtures.calmMarket.shocked(by: -0.10)
        let portfolio = try Self.funded(
            Portfolio(positions: [
                try Self.position("BTC-USD-260130-95000-C", -300, market: market),
                try Self.position("BTC-USD-260130-85000-P", -300, market: market),
            ]), toRatio: 0.85, market: market)
        let before = try PortfolioMargin.compute(portfolio, market: market, parameters: Self.parameters)
        #expect([.mr1, .mr6].contains(before.units.first?.components.dominant))
        let plan = try Self.plan(portfolio, market: market)
        #expect(plan.triggered)
        let hedge = try #require(plan.executedActions.first)
        #expect(hedge.step == .ddh2)
        #expect(hedge.fills.map(\.instrumentID) == ["BTC-USDT-SWAP"])
        // The strangle is short the put that is now in the money: positive delta, hedged by selling.
        #expect((before.units.first?.greeks.deltaBS ?? 0) > 0 && hedge.fills[0].sizeContracts < 0)
        #expect((hedge.ratioAfter ?? 0) > (hedge.ratioBefore ?? 0))
        #expect((plan.after.marginRatio ?? .infinity) > Self.parameters.liquidationStopRatio || plan.finalPortfolio.positions.isEmpty)
    }

    /// Basis: a long near future against a short far future comes off both legs together.
    @Test func basisClosesTheCalendarSpreadTogether() throws {
        let market = Fixtures.calmMarket
        let portfolio = try Self.funded(
            Portfolio(positions: [
                try Self.position("BTC-USDT-260130", 2_000, market: market),
                try Self.position("BTC-USDT-261225", -2_000, market: market),
            ]), toRatio: 0.9, market: market)
        let plan = try Self.plan(portfolio, market: market)
        Self.expectRestored(plan, firstStep: .basis)
        let first = try #require(plan.executedActions.first)
        #expect(first.fills.count == 2)
        #expect(abs(first.fills[0].sizeContracts) == abs(first.fills[1].sizeContracts), "equal coin delta on same-size contracts")
        #expect(first.fills[0].sizeContracts * first.fills[1].sizeContracts < 0)
    }

    /// General reduction: an over-levered perpetual is cut in one slice sized to the stop plus the buffer.
    @Test func generalReductionSlicesAnOverLeveredPerpetual() throws {
        let market = Fixtures.calmMarket
        let portfolio = try Self.funded(
            Portfolio(positions: [try Self.position("ETH-USDT-SWAP", -5_000, market: market)]), toRatio: 0.95, market: market)
        let plan = try Self.plan(portfolio, market: market)
        Self.expectRestored(plan, firstStep: .general)
        #expect(plan.executedActions.count == 1)
        let ratio = try #require(plan.after.marginRatio)
        let target = Self.parameters.liquidationStopRatio * (1 + Self.parameters.liquidationSliceBuffer)
        #expect(ratio > target)
        // One lot less would not have reached the target: the slice is the smallest that does.
        let fill = try #require(plan.executedActions.first?.fills.first)
        let instrument = try Self.catalog.instrument("ETH-USDT-SWAP", path: "test")
        #expect(fill.sizeContracts > 0 && fill.sizeContracts < 5_000)
        let (oneLotLess, _) = portfolio.trading(
            instrument, sizeContracts: fill.sizeContracts - instrument.lotSize, price: fill.price,
            feeRate: Self.parameters.liquidationFeeRate[.tier1] ?? 0, market: try market.market(for: instrument, path: ""),
            settleIndexUSD: try market.indexUSD("USDT"))
        let shortOfTarget = try PortfolioMargin.compute(oneLotLess, market: market, parameters: Self.parameters)
        #expect((shortOfTarget.marginRatio ?? .infinity) <= target)
    }

    /// liqMoves: the smallest move of one coin at which the ratio reaches the trigger, other coins held.
    @Test func liquidationDistanceFindsTheFirstCrossing() throws {
        let market = Fixtures.calmMarket
        let portfolio = try Self.funded(
            Portfolio(positions: [
                try Self.position("BTC-USDT-SWAP", -300, market: market),
                try Self.position("ETH-USDT-SWAP", 200, market: market),
            ]), toRatio: 2.5, market: market)
        let moves = try LiquidationDistance.moves(portfolio, coin: "BTC", market: market, parameters: Self.parameters)
        let up = try #require(moves.up)
        #expect(up > 0 && up < 0.99)
        let shock = try PortfolioShock(portfolio, market: market, parameters: Self.parameters)
        #expect((try shock.result(move: up, onlyCoin: "BTC").marginRatio ?? 0) <= 1)
        #expect((try shock.result(move: up - 0.001, onlyCoin: "BTC").marginRatio ?? 0) > 1)
        // The ETH leg is held: the same move applied to every coin gives a different ratio.
        #expect(try shock.result(move: up).marginRatio != (try shock.result(move: up, onlyCoin: "BTC").marginRatio))
        // A short BTC leg alone cannot be liquidated by a fall within ±99 %.
        if let down = moves.down { #expect(down < -0.5) }
        let unsafe = try Self.funded(portfolio, toRatio: 0.9, market: market)
        let immediate = try LiquidationDistance.moves(unsafe, coin: "BTC", market: market, parameters: Self.parameters)
        #expect(immediate.down == 0 && immediate.up == 0)
    }

    @Test func safeAccountIsLeftAlone() throws {
        let market = Fixtures.calmMarket
        let portfolio = try Self.funded(
            Portfolio(positions: [try Self.position("BTC-USDT-SWAP", -100, market: market)]), toRatio: 3, market: market)
        let plan = try Self.plan(portfolio, market: market)
        #expect(!plan.triggered && plan.actions.isEmpty)
        #expect(plan.summary.hasPrefix("safe: margin ratio"))
    }

    /// An insolvent account is closed out and the insurance fund covers the deficit.
    @Test func deficitGoesToTheInsuranceFund() throws {
        let market = Fixtures.calmMarket
        let portfolio = Portfolio(
            positions: [try Self.position("BTC-USDT-SWAP", -2_000, market: market, averagePrice: 80_000)], cashBalances: ["USDT": 20_000])
        let plan = try Self.plan(portfolio, market: market)
        #expect(plan.finalPortfolio.positions.isEmpty)
        #expect(plan.executedActions.last?.step == .deficit)
        #expect((plan.insuranceFundChanges["USDT"] ?? 0) < 0)
        #expect(plan.finalPortfolio.cashBalances.values.allSatisfy { $0 >= 0 })
    }

    // MARK: - Invariants on random under-margined portfolios

    static let universe = RandomPortfolios(catalog: Fixtures.catalog, market: Fixtures.calmMarket, parameters: Fixtures.parameters)

    static func underMargined(seed: UInt64) throws -> Portfolio {
        var generator = SeededGenerator(seed: seed)
        let ratio = Double.random(in: 0.3...0.99, using: &generator)
        return try funded(universe.portfolio(seed: seed, maximumPositions: 6), toRatio: ratio, market: universe.market)
    }

    @Test func planInvariantsOnRandomUnderMarginedPortfolios() async {
        await propertyCheck(count: 20, input: Gen.int(in: 0...Int.max)) { seed in
            try Self.checkPlanInvariants(seed: UInt64(seed))
        }
    }

    /// Inputs that once broke an invariant: positions left beside an unpaid liability because no single
    /// reduction (nor the close-out, by its fees) raised the ratio until collateral repaid the loan.
    @Test(arguments: [1_730_142_567_448, 8_848_814_700_375_089_366, 988_042_942_365_620_591] as [UInt64])
    func planInvariantsRegressions(seed: UInt64) throws {
        try Self.checkPlanInvariants(seed: seed)
    }

    static func checkPlanInvariants(seed: UInt64) throws {
        do {
            let portfolio = try Self.underMargined(seed: seed)
            let plan = try Self.plan(portfolio, market: Self.universe.market)
            #expect(plan.triggered, "ratio \(plan.before.marginRatio ?? .infinity)")
            // Ends above the stop, or with nothing left to close.
            #expect(
                (plan.after.marginRatio ?? .infinity) > Self.parameters.liquidationStopRatio || plan.finalPortfolio.positions.isEmpty,
                "\(plan.summary)")
            // Every executed action raised the margin ratio (or, with no equity left, lowered the requirement),
            // except the forced close-out, which happens only when no action could and the account is still at
            // or below the trigger.
            var forced = false
            for action in plan.executedActions where action.step != .cancelOrders {
                if action.reason.hasPrefix("forced") {
                    if !forced {
                        #expect((action.ratioBefore ?? .infinity) <= Self.parameters.liquidationTriggerRatio)
                        #expect(plan.actions.contains { $0.status == .skipped }, "forced only after ratio-raising actions ran out")
                    }
                    forced = true
                    continue
                }
                #expect(!forced || action.step == .deficit, "no ordinary action after the forced close-out")
                let ratioRose = (action.ratioAfter ?? .infinity) > (action.ratioBefore ?? .infinity)
                let mmrFell = action.mmrAfterUSD < action.mmrBeforeUSD
                #expect(ratioRose || ((action.ratioBefore ?? 1) <= 0 && mmrFell), "\(action.step) \(action.reason)")
            }
            // Cash is conserved: replaying every action's cash changes on the netted start gives the final
            // balances, and every change is a fill's P&L, premium or fee, a collateral sale or a fund transfer.
            var balances = portfolio.nettedByInstrument().cashBalances
            for action in plan.executedActions {
                for (currency, change) in action.cashChanges { balances[currency, default: 0] += change }
                var explained: [String: Double] = [:]
                // P&L + premium − fee of each fill, as the ledger posts it (rounded to the currency's scale).
                for fill in action.fills {
                    #expect(
                        abs(fill.cashChange - (fill.realizedPnL + fill.premium - fill.fee)) <= 0.5e-6 * max(1, abs(fill.cashChange)) + 1e-12
                    )
                    explained[fill.settleCurrency, default: 0] += fill.cashChange
                }
                if action.step == .general || action.step == .basis || action.step == .ddh1 || action.step == .ddh2 {
                    for currency in Set(explained.keys).union(action.cashChanges.keys) {
                        let scale = max(1, abs(explained[currency] ?? 0))
                        #expect(
                            isClose(action.cashChanges[currency] ?? 0, explained[currency] ?? 0, relative: 1e-9, absolute: 1e-9 * scale))
                    }
                    let fees = action.fills.reduce(into: [String: Double]()) { $0[$1.settleCurrency, default: 0] += $1.fee }
                    #expect(action.insuranceFundChanges == fees.filter { $0.value != 0 })
                }
                if action.step == .deficit {
                    for (currency, change) in action.cashChanges {
                        #expect(isClose(change, -(action.insuranceFundChanges[currency] ?? 0), relative: 1e-12))
                    }
                }
            }
            for (currency, balance) in plan.finalPortfolio.cashBalances {
                #expect(isClose(balances[currency] ?? 0, balance, relative: 1e-9, absolute: 1e-6))
            }
            // The same input gives the same plan.
            let again = try Self.plan(portfolio, market: Self.universe.market)
            #expect(
                JSONWriter.serialize(again.json(parameters: Self.parameters))
                    == JSONWriter.serialize(plan.json(parameters: Self.parameters)))
        }
    }

    /// A trade's realised P&L, recomputed by hand for a linear and an inverse reduction and an option close.
    @Test func tradesRealiseProfitAndLossAsBooked() throws {
        let market = Fixtures.calmMarket
        let linear = try Self.catalog.instrument("BTC-USDT-SWAP", path: "t")
        let inverse = try Self.catalog.instrument("BTC-USD-SWAP", path: "t")
        let option = try Self.catalog.instrument("BTC-USD-260327-90000-C", path: "t")
        let portfolio = Portfolio(
            positions: [
                Position(instrument: linear, sizeContracts: -100, averagePrice: 80_000),
                Position(instrument: inverse, sizeContracts: 500, averagePrice: 90_000),
                Position(instrument: option, sizeContracts: 20, averagePrice: 0.05),
            ], cashBalances: ["USDT": 1_000])
        let (afterLinear, linearFill) = portfolio.trading(
            linear, sizeContracts: 40, price: 85_000, feeRate: 0.001,
            market: try market.market(for: linear, path: ""), settleIndexUSD: try market.indexUSD("USDT"))
        #expect(isClose(linearFill.realizedPnL, -40 * 0.01 * (85_000 - 80_000), relative: 1e-12))
        #expect(afterLinear.positions.first { $0.instrument == linear }?.sizeContracts == -60)
        #expect(isClose(afterLinear.cashBalances["USDT"] ?? 0, 1_000 + linearFill.realizedPnL - linearFill.fee, relative: 1e-12))
        let (_, inverseFill) = portfolio.trading(
            inverse, sizeContracts: -500, price: 95_000, feeRate: 0,
            market: try market.market(for: inverse, path: ""), settleIndexUSD: try market.indexUSD("BTC"))
        #expect(isClose(inverseFill.realizedPnL, 500 * 100 * (1 / 90_000.0 - 1 / 95_000.0), relative: 1e-12))
        let (afterOption, optionFill) = portfolio.trading(
            option, sizeContracts: -20, price: 0.07, feeRate: 0,
            market: try market.market(for: option, path: ""), settleIndexUSD: try market.indexUSD("BTC"))
        #expect(isClose(optionFill.premium, 20 * 0.01 * 0.07, relative: 1e-12))
        #expect(!afterOption.positions.contains { $0.instrument == option })
        // Netting merges lines without changing equity.
        let duplicated = Portfolio(positions: [
            Position(instrument: linear, sizeContracts: -100, averagePrice: 80_000),
            Position(instrument: linear, sizeContracts: 30, averagePrice: 85_000),
        ])
        let netted = duplicated.nettedByInstrument()
        let before = try PortfolioMargin.compute(duplicated, market: market, parameters: Self.parameters)
        let after = try PortfolioMargin.compute(netted, market: market, parameters: Self.parameters)
        #expect(netted.positions.count == 1 && netted.positions[0].sizeContracts == -70)
        #expect(isClose(after.equityUSD, before.equityUSD, relative: 1e-12))
    }
}
