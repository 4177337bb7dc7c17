import Foundation
import MarginEngine
import MarginTestSupport
import Testing

/// Each component checked against a hand computation from the formulas of
/// docs/methodology/01-instruments-market.md §1.5 and 02-margin.md.
@Suite struct ScenarioTests {
    static let parameters = Fixtures.parameters
    static let market = Fixtures.calmMarket

    static func instrument(_ id: String) throws -> Instrument { try Fixtures.catalog.instrument(id, path: "test") }

    static func risk(_ id: String) throws -> InstrumentRisk {
        InstrumentRisk(try market.market(for: try instrument(id), path: "test"), parameters: parameters)
    }

    static func unit(
        _ positions: [(String, Double)], balances: [String: Double] = [:], chosen: [String: Double] = [:],
        parameters: MarginParameters = parameters
    ) throws -> RiskUnitResult {
        let portfolio = Portfolio(
            positions: try positions.map { id, size in
                let instrument = try instrument(id)
                return Position(
                    instrument: instrument, sizeContracts: size, averagePrice: try market.market(for: instrument, path: "").markPrice)
            },
            cashBalances: balances, chosenSpotInUse: chosen)
        let result = try PortfolioMargin.compute(portfolio, market: market, parameters: parameters)
        return try #require(result.units.first)
    }

    /// An option's scenario vector is the Black-76 revaluation at the shocked forward and volatility.
    @Test(arguments: ["BTC-USD-260327-90000-C", "BTC-USD-260102-88000-P", "ETH-USD-261225-3000-C"])
    func optionCellsAreRevaluations(id: String) throws {
        let instrument = try Self.instrument(id)
        let resolved = try Self.market.market(for: instrument, path: "test")
        let option = try #require(resolved.option)
        let risk = InstrumentRisk(resolved, parameters: Self.parameters)
        let strike = try #require(instrument.id.strikeUSD)
        let kind = try #require(instrument.id.optionKind)
        let coins = instrument.contractValue * instrument.contractMultiplier
        func value(_ forward: Double, _ volatility: Double, years: Double? = nil, rate: Double? = nil) -> Double {
            let t = years ?? option.timeToExpiryYears
            let r = rate ?? option.usdRate
            return Black76.price(
                kind, forward: forward, strike: strike, volatility: volatility, timeToExpiryYears: t, discountFactor: exp(-r * t))
        }
        let base = value(option.forwardUSD, option.volatility)
        let row = Self.parameters.volatilityShock(days: option.timeToExpiryYears * 365)
        let up = option.volatility + max(row.upPoints / 100, row.upPercent * option.volatility)
        let down = max(
            option.volatility - max(row.downPoints / 100, row.downPercent * option.volatility),
            min(option.volatility, Self.parameters.volatilityFloor))
        let layout = ScenarioLayout(Self.parameters.derivatives[.tier1]!)
        for (move, x) in layout.mr1Moves.enumerated() {
            let forward = option.forwardUSD + x * resolved.indexUSD
            for (state, volatility) in [(VolatilityState.up, up), (.same, option.volatility), (.down, down)] {
                let expected = coins * (value(forward, volatility) - base)
                #expect(
                    isClose(
                        risk.scenarioPnLUSD[ScenarioLayout.mr1Index(move: move, state: state)], expected, relative: 1e-12, absolute: 1e-9))
            }
        }
        let forward24 = option.forwardUSD + 0.24 * resolved.indexUSD
        #expect(
            isClose(
                risk.scenarioPnLUSD[ScenarioLayout.mr6Index(move: 1, state: .up)], coins * (value(forward24, up) - base), relative: 1e-12,
                absolute: 1e-9))
        let basis = max(0.002, 0.05 * option.timeToExpiryYears)
        #expect(
            isClose(
                risk.scenarioPnLUSD[ScenarioLayout.mr4Up], coins * (value(option.forwardUSD * (1 + basis), option.volatility) - base),
                relative: 1e-12, absolute: 1e-9))
        let decayed =
            option.timeToExpiryYears > 1.0 / 365
            ? value(option.forwardUSD, option.volatility, years: option.timeToExpiryYears - 1.0 / 365)
            : max(kind == .call ? option.forwardUSD - strike : strike - option.forwardUSD, 0)
        #expect(isClose(risk.scenarioPnLUSD[ScenarioLayout.mr2], coins * (decayed - base), relative: 1e-12, absolute: 1e-9))
        #expect(
            isClose(
                risk.scenarioPnLUSD[ScenarioLayout.mr5Up],
                coins * (value(option.forwardUSD, option.volatility, rate: option.usdRate + 0.03) - base), relative: 1e-12, absolute: 1e-9))
        #expect(risk.scenarioPnLUSD[ScenarioLayout.mr2] < 0, "a long option loses time value")
    }

    /// Linear P&L is `ctVal·x·S_quote·stable-USD`; inverse P&L is `ctVal·(1/F − 1/F')·S'` with `F' = F + x·S`.
    @Test func linearAndInverseCells() throws {
        let linear = try Self.risk("ETH-USDT-SWAP")
        let inverse = try Self.risk("ETH-USD-260327")
        let usdt = try Self.market.indexUSD("USDT")
        let ethUSD = try Self.market.indexUSD("ETH")
        let ethUSDT = try Self.market.index(base: "ETH", quote: "USDT")
        let layout = ScenarioLayout(Self.parameters.derivatives[.tier1]!)
        let futureMark = try #require(inverse.market?.markPrice)
        for (move, x) in layout.mr1Moves.enumerated() {
            let index = ScenarioLayout.mr1Index(move: move, state: .same)
            #expect(isClose(linear.scenarioPnLUSD[index], 0.1 * x * ethUSDT * usdt, relative: 1e-12, absolute: 1e-12))
            let shifted = futureMark + x * ethUSD
            #expect(
                isClose(
                    inverse.scenarioPnLUSD[index], 10 * (1 / futureMark - 1 / shifted) * ethUSD * (1 + x), relative: 1e-12, absolute: 1e-12)
            )
        }
        // Basis: a future moves by max(perpBasis, annualBasis·τ) of its price, a perpetual by perpBasis.
        let years = try #require(inverse.market?.timeToExpiryYears)
        let basis = max(0.002, 0.05 * years)
        #expect(
            isClose(
                inverse.scenarioPnLUSD[ScenarioLayout.mr4Up], 10 * (1 / futureMark - 1 / (futureMark * (1 + basis))) * ethUSD,
                relative: 1e-12))
        let perpMark = try #require(linear.market?.markPrice)
        #expect(isClose(linear.scenarioPnLUSD[ScenarioLayout.mr4Down], -0.1 * 0.002 * perpMark * usdt, relative: 1e-12))
        #expect(linear.scenarioPnLUSD[ScenarioLayout.mr2] == 0 && linear.scenarioPnLUSD[ScenarioLayout.mr5Up] == 0)
    }

    /// MR3 charges calendar vega: `k·(Σ|V_e s_e| − |Σ V_e s_e|)`; zero with one expiry.
    @Test func volatilityTermStructure() throws {
        let near = try Self.risk("BTC-USD-260130-90000-C")
        let far = try Self.risk("BTC-USD-260626-90000-C")
        let calendar = try Self.unit([("BTC-USD-260130-90000-C", 100), ("BTC-USD-260626-90000-C", -50)])
        let a = 100 * near.vegaShockUSD
        let b = -50 * far.vegaShockUSD
        #expect(isClose(calendar.components.mr3, 0.3 * (abs(a) + abs(b) - abs(a + b)), relative: 1e-12))
        #expect(calendar.components.mr3 > 0)
        let sameExpiry = try Self.unit([("BTC-USD-260130-90000-C", 100), ("BTC-USD-260130-95000-C", -50)])
        #expect(sameExpiry.components.mr3 == 0)
        let perpetualOnly = try Self.unit([("BTC-USDT-SWAP", 10)])
        #expect(perpetualOnly.components.mr2 == 0 && perpetualOnly.components.mr3 == 0 && perpetualOnly.components.mr5 == 0)
    }

    /// MR4 on a long perpetual against a short future: both legs move up (or down) by their own basis.
    @Test func basisOfACalendarSpread() throws {
        let spread = try Self.unit([("BTC-USDT-SWAP", 100), ("BTC-USDT-260925", -100)])
        let perp = try Self.risk("BTC-USDT-SWAP")
        let future = try Self.risk("BTC-USDT-260925")
        let up = 100 * perp.scenarioPnLUSD[ScenarioLayout.mr4Up] - 100 * future.scenarioPnLUSD[ScenarioLayout.mr4Up]
        let down = 100 * perp.scenarioPnLUSD[ScenarioLayout.mr4Down] - 100 * future.scenarioPnLUSD[ScenarioLayout.mr4Down]
        #expect(isClose(spread.components.mr4, max(0, -min(up, down)), relative: 1e-12))
        #expect(spread.components.mr4 > 0)
        // Delta-neutral: MR1 only from the basis difference of the quotes, far smaller than one leg's.
        let oneLeg = try Self.unit([("BTC-USDT-SWAP", 100)])
        #expect(spread.components.mr1 < 0.01 * oneLeg.components.mr1)
    }

    /// MR9 matches (USDT, USD), then (USDT, USDC), then (USDC, USD).
    @Test func depegPairsInOrder() throws {
        let market = try MarketSnapshot(valuationTime: UnixMillis(1), indices: ["USDT-USD": 0.997, "USDC-USD": 1.0], marks: [:])
        var exposure = UnitExposure.empty
        exposure.cashDeltaUSD = [5_000_000, -4_000_000, -3_000_000]  // USDT long, USDC short, USD short
        let components = try RiskUnitComponents(exposure, tier: .tier1, market: market, parameters: Self.parameters)
        // (USDT, USD): hedge 3M at deviation 0.3 % (first column); (USDT, USDC): hedge 2M, deviation
        // |1 − 0.997/1.0| = 0.3 %; (USDC, USD): USD is exhausted.
        let firstColumn = [
            ProgressiveBand(upTo: 1_000_000, rate: 0.0075), ProgressiveBand(upTo: 5_000_000, rate: 0.0175),
            ProgressiveBand(upTo: nil, rate: 0.025),
        ]
        let expected = progressiveCharge(3_000_000, bands: firstColumn) + progressiveCharge(2_000_000, bands: firstColumn)
        #expect(isClose(components.mr9, expected, relative: 1e-12))
        // A 1.5 % depeg moves the charge to the third column.
        let depegged = try MarketSnapshot(valuationTime: UnixMillis(1), indices: ["USDT-USD": 0.985, "USDC-USD": 1.0], marks: [:])
        var hedge = UnitExposure.empty
        hedge.cashDeltaUSD = [1_000_000, 0, -1_000_000]
        let charged = try RiskUnitComponents(hedge, tier: .tier1, market: depegged, parameters: Self.parameters)
        #expect(isClose(charged.mr9, 30_000, relative: 1e-12))
    }

    /// Spot in use: the opposite-signed balance, up to the derivative delta, or the user's clamped choice.
    @Test(
        arguments: [
            (2.0, -5.0, nil, 2.0), (8.0, -5.0, nil, 5.0), (2.0, 5.0, nil, 0.0), (-3.0, 5.0, nil, -3.0),
            (2.0, -5.0, 1.5, 1.5), (2.0, -5.0, 10.0, 2.0), (-3.0, 5.0, 1.0, -1.0), (2.0, 5.0, 1.0, 0.0),
        ] as [(Double, Double, Double?, Double)])
    func spotInUseRule(balance: Double, delta: Double, chosen: Double?, expected: Double) {
        #expect(spotInUse(balanceCoins: balance, derivativeDeltaCoins: delta, chosenCoins: chosen).amount == expected)
    }

    @Test func chosenSpotInUseIsClampedAndApplied() throws {
        let full = try Self.unit([("BTC-USDT-SWAP", -500)], balances: ["BTC": 3])
        let chosen = try Self.unit([("BTC-USDT-SWAP", -500)], balances: ["BTC": 3], chosen: ["BTC": 1])
        let none = try Self.unit([("BTC-USDT-SWAP", -500)], balances: ["BTC": 3], chosen: ["BTC": 0])
        #expect(full.spotInUse?.coins == 3)
        #expect(chosen.spotInUse?.coins == 1)
        #expect(none.spotInUse?.coins == 0)
        #expect(full.components.mmr < chosen.components.mmr && chosen.components.mmr < none.components.mmr)
        #expect(isClose(full.spotInUse?.marginalMmrUSD ?? 0, full.components.mmr - none.components.mmr, relative: 1e-9))
    }

    /// `conservativeMax` keeps the larger of the unit computed with and without spot in use.
    @Test func conservativeAggregationKeepsTheLargerRequirement() throws {
        var literal = Self.parameters
        literal.spotHedgeAggregation = .conservativeMax
        let positions = [("BTC-USDT-SWAP", -500.0)]
        let hedged = try Self.unit(positions, balances: ["BTC": 4])
        let unhedged = try Self.unit(positions)
        let conservative = try Self.unit(positions, balances: ["BTC": 4], parameters: literal)
        #expect(conservative.components.mmr == max(hedged.components.mmr, unhedged.components.mmr))
        #expect(conservative.components.mmr == unhedged.components.mmr)
        #expect(conservative.spotInUse?.coins == 0)
    }

    /// Discounted equity through the tiers, liabilities at 100 %, borrowing requirements progressive.
    @Test func collateralAndBorrowing() throws {
        let btcUSD = try Self.market.indexUSD("BTC")
        let usdtUSD = try Self.market.indexUSD("USDT")
        let result = try PortfolioMargin.compute(
            Portfolio(cashBalances: ["BTC": 150, "USDT": -2_500_000]), market: Self.market, parameters: Self.parameters)
        let btc = try #require(result.currencies.first { $0.currency == "BTC" })
        #expect(isClose(btc.discountedEquityUSD, (100 * 0.98 + 50 * 0.95) * btcUSD, relative: 1e-12))
        let usdt = try #require(result.currencies.first { $0.currency == "USDT" })
        let liability = 2_500_000 * usdtUSD
        #expect(isClose(usdt.discountedEquityUSD, -liability, relative: 1e-12))
        #expect(isClose(usdt.borrowMmrUSD, 1_000_000 * 0.02 + (liability - 1_000_000) * 0.03, relative: 1e-12))
        #expect(isClose(usdt.borrowImrUSD, 1_000_000 * 0.10 + (liability - 1_000_000) * 0.125, relative: 1e-12))
        #expect(isClose(result.totalMmrUSD, usdt.borrowMmrUSD, relative: 0))
        #expect(isClose(result.marginRatio ?? 0, result.adjustedEquityUSD / result.totalMmrUSD, relative: 0))
        #expect(result.units.isEmpty)
    }

    /// Equity counts an option at its market value and a future by its unrealised P&L in the settlement coin.
    @Test func equityAndUnrealisedPnL() throws {
        let option = try Self.instrument("BTC-USD-260327-90000-C")
        let future = try Self.instrument("BTC-USD-260327")
        let optionMark = try Self.market.market(for: option, path: "").markPrice
        let futureMark = try Self.market.market(for: future, path: "").markPrice
        let portfolio = Portfolio(
            positions: [
                Position(instrument: option, sizeContracts: 10, averagePrice: 0.05),
                Position(instrument: future, sizeContracts: -30, averagePrice: 85_000),
            ], cashBalances: ["BTC": 1])
        let result = try PortfolioMargin.compute(portfolio, market: Self.market, parameters: Self.parameters)
        let btc = try #require(result.currencies.first { $0.currency == "BTC" })
        let expected = 1 + 10 * 0.01 * optionMark + (-30) * 100 * (1 / 85_000 - 1 / futureMark)
        #expect(isClose(btc.equity, expected, relative: 1e-12))
        let upl = (10 * 0.01 * (optionMark - 0.05) + (-30) * 100 * (1 / 85_000 - 1 / futureMark)) * (try Self.market.indexUSD("BTC"))
        #expect(isClose(result.uplUSD, upl, relative: 1e-12))
    }

    /// idxVol: the unit's figures at the shocked market, the unshocked ones in the …Bf fields.
    @Test func indexShockFillsBeforeFields() throws {
        let body =
            #"{"simPos":[{"instId":"BTC-USDT-SWAP","pos":"-100","avgPx":"88000"},{"instId":"BTC-USD-260327-90000-C","pos":"50"}],"idxVol":"-0.05"}"#
        let shockedRequest = try PositionBuilderRequest(bytes: Array(body.utf8))
        var plainRequest = shockedRequest
        plainRequest.indexShock = nil
        let shocked = try PositionBuilder.build(shockedRequest, catalog: Fixtures.catalog, market: Self.market, parameters: Self.parameters)
        let plain = try PositionBuilder.build(plainRequest, catalog: Fixtures.catalog, market: Self.market, parameters: Self.parameters)
        let direct = try PositionBuilder.build(
            plainRequest, catalog: Fixtures.catalog, market: Self.market.shocked(by: -0.05), parameters: Self.parameters)
        let shockedUnit = shocked[member: "riskUnitData"]?.arrayItems.first
        #expect(shockedUnit?[member: "mmrBf"] == plain[member: "riskUnitData"]?.arrayItems.first?[member: "mmr"])
        #expect(shockedUnit?[member: "mmr"] == direct[member: "riskUnitData"]?.arrayItems.first?[member: "mmr"])
        #expect(shockedUnit?[member: "mmr"] != shockedUnit?[member: "mmrBf"])
        #expect(plain[member: "riskUnitData"]?.arrayItems.first?[member: "mmrBf"]?.scalarText == "")
    }

    /// The graph point at a shock factor equals the build at the market shocked by that factor.
    @Test func graphMatchesShockedBuilds() throws {
        let body =
            #"{"simPos":[{"instId":"BTC-USDT-SWAP","pos":"-100"},{"instId":"ETH-USD-260327-3000-P","pos":"-20"}],"simAsset":[{"ccy":"USDT","amt":"50000"}]}"#
        let request = try PositionBuilderRequest(bytes: Array(body.utf8))
        let graph = try PositionBuilder.graph(request, catalog: Fixtures.catalog, market: Self.market, parameters: Self.parameters)
        let points = graph[member: "mmrData"]?.arrayItems ?? []
        #expect(points.count == 200)
        #expect(points.first?[member: "shockFactor"]?.scalarText == "-0.99")
        #expect(points.last?[member: "shockFactor"]?.scalarText == "1")
        let factors = points.compactMap { $0[member: "shockFactor"]?.doubleValue }
        #expect(zip(factors, factors.dropFirst()).allSatisfy { $0 < $1 })
        for factor in [-0.3, 0.0, 0.12] {
            let point = points.first { isClose($0[member: "shockFactor"]?.doubleValue ?? 9, factor, relative: 0, absolute: 1e-12) }
            let build = try PositionBuilder.build(
                request, catalog: Fixtures.catalog, market: Self.market.shocked(by: factor), parameters: Self.parameters)
            #expect(point?[member: "mmr"] == build[member: "totalMmr"])
        }
    }
}
