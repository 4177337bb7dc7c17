import MarginEngine
import MarginTestSupport
import PropertyBased
import Testing

/// Invariants of the margin on random valid portfolios drawn from the shipped calm and sell-off markets.
@Suite struct MarginPropertyTests {
    static let calm = RandomPortfolios(catalog: Fixtures.catalog, market: Fixtures.calmMarket, parameters: Fixtures.parameters)
    static let selloff = RandomPortfolios(catalog: Fixtures.catalog, market: Fixtures.selloffMarket, parameters: Fixtures.parameters)
    static let seeds = Gen.int(in: 0...Int.max).map { UInt64($0) }
    static let checks = 40

    static func margin(_ portfolio: Portfolio, _ universe: RandomPortfolios) throws -> PortfolioMarginResult {
        try PortfolioMargin.compute(portfolio, market: universe.market, parameters: Fixtures.parameters)
    }

    static func components(_ unit: RiskUnitResult) -> [Double] {
        let c = unit.components
        return [c.mr1, c.mr2, c.mr3, c.mr4, c.mr5, c.mr6, c.mr7, c.mr9, c.mmr, c.imr]
    }

    /// (a) Every MR and MMR is finite and ≥ 0, and so are the account totals.
    @Test func componentsAreFiniteAndNonNegative() async {
        for universe in [Self.calm, Self.selloff] {
            await propertyCheck(count: Self.checks, input: Self.seeds) { seed in
                let result = try Self.margin(universe.portfolio(seed: seed), universe)
                for unit in result.units {
                    #expect(Self.components(unit).allSatisfy { $0.isFinite && $0 >= 0 }, "\(unit.coin): \(Self.components(unit))")
                }
                #expect(
                    [result.totalMmrUSD, result.totalImrUSD, result.borrowMmrUSD, result.derivativesMmrUSD].allSatisfy {
                        $0.isFinite && $0 >= 0
                    })
                #expect(result.adjustedEquityUSD.isFinite && result.equityUSD.isFinite)
            }
        }
    }

    /// (b) Scaling every position (and balance) by k > 0 scales MR1–MR6 by k.
    @Test func componentsScaleLinearly() async {
        await propertyCheck(count: Self.checks, input: Self.seeds, Gen.double(in: 0.1...10)) { seed, k in
            let portfolio = Self.calm.portfolio(seed: seed)
            var scaled = portfolio
            scaled.positions = portfolio.positions.map { position in
                var copy = position
                copy.sizeContracts *= k
                return copy
            }
            scaled.cashBalances = portfolio.cashBalances.mapValues { $0 * k }
            let base = try Self.margin(portfolio, Self.calm)
            let bigger = try Self.margin(scaled, Self.calm)
            #expect(base.units.map(\.coin) == bigger.units.map(\.coin))
            for (unit, scaledUnit) in zip(base.units, bigger.units) {
                let gross = unit.positions.reduce(0) { $0 + $1.notionalUSD } * k
                let pairs = [
                    (unit.components.mr1, scaledUnit.components.mr1), (unit.components.mr2, scaledUnit.components.mr2),
                    (unit.components.mr3, scaledUnit.components.mr3), (unit.components.mr4, scaledUnit.components.mr4),
                    (unit.components.mr5, scaledUnit.components.mr5), (unit.components.mr6, scaledUnit.components.mr6),
                ]
                for (index, (small, large)) in pairs.enumerated() {
                    #expect(
                        isClose(large, k * small, relative: 1e-9, absolute: 1e-12 * gross),
                        "\(unit.coin) MR\(index + 1): \(large) vs \(k) × \(small)")
                }
            }
        }
    }

    /// (c) A portfolio plus its exact opposite nets to nothing (positions are net: no unit, no requirement),
    /// and its scenario exposure, summed line by line, cancels up to rounding of the sum.
    @Test func oppositePortfolioCancels() async {
        await propertyCheck(count: Self.checks, input: Self.seeds) { seed in
            let portfolio = Self.calm.portfolio(seed: seed, withBalances: false)
            var doubled = portfolio
            doubled.positions += portfolio.positions.map { position in
                var opposite = position
                opposite.sizeContracts = -position.sizeContracts
                return opposite
            }
            let result = try Self.margin(doubled, Self.calm)
            #expect(result.units.isEmpty, "\(result.units.map(\.coin))")
            #expect(result.derivativesMmrUSD == 0 && result.derivativesImrUSD == 0)
            // Lines of one instrument at different entry prices leave their locked-in P&L in cash: zero up to
            // the rounding of Σ size × price, so at most a borrowing charge on a rounding error.
            #expect(result.borrowMmrUSD < 1e-6, "\(result.borrowMmrUSD)")
            var exposures: [String: (exposure: UnitExposure, grossUSD: Double)] = [:]
            for position in doubled.positions {
                let risk = InstrumentRisk(try Self.calm.market.market(for: position.instrument, path: ""), parameters: Fixtures.parameters)
                var entry = exposures[position.instrument.underlying] ?? (UnitExposure.empty, 0)
                entry.exposure.add(risk, sizeContracts: position.sizeContracts)
                entry.grossUSD += abs(position.sizeContracts) * risk.notionalUSD
                exposures[position.instrument.underlying] = entry
            }
            for (coin, entry) in exposures {
                for (index, value) in entry.exposure.scenarioPnLUSD.enumerated() {
                    #expect(abs(value) <= 1e-9 * entry.grossUSD, "\(coin) scenario \(index) = \(value) on gross \(entry.grossUSD)")
                }
                #expect(entry.exposure.minimumChargeUSD > 0, "MR7's raw charge is gross: opposite lines both count")
            }
        }
    }

    /// (d) A long spot balance lowers the MMR of a short perpetual's unit (spot in use hedges it).
    @Test func longSpotLowersShortPerpetualMargin() async {
        let perpetuals = [
            "BTC-USDT-SWAP", "ETH-USDT-SWAP", "SOL-USDT-SWAP", "LTC-USDT-SWAP", "AVAX-USDT-SWAP", "BTC-USD-SWAP", "ETH-USDC-SWAP",
        ]
        await propertyCheck(
            count: Self.checks, input: Gen.int(in: 0...perpetuals.count - 1), Gen.int(in: 1...5000), Gen.double(in: 0.01...1)
        ) { which, lots, hedgeShare in
            let id = perpetuals[which]
            let instrument = try Fixtures.catalog.instrument(id, path: "test")
            let market = try Fixtures.calmMarket.market(for: instrument, path: "test")
            let size = -Double(lots) * instrument.lotSize * 10
            let position = Position(instrument: instrument, sizeContracts: size, averagePrice: market.markPrice)
            let unhedged = try Self.margin(Portfolio(positions: [position]), Self.calm)
            let coinDelta = unhedged.units[0].greeks.deltaBS
            let balance = -coinDelta * hedgeShare
            let hedged = try Self.margin(Portfolio(positions: [position], cashBalances: [instrument.underlying: balance]), Self.calm)
            #expect(
                hedged.units[0].components.mmr < unhedged.units[0].components.mmr,
                "\(id) size \(size): \(hedged.units[0].components.mmr) vs \(unhedged.units[0].components.mmr)")
            #expect(isClose(hedged.units[0].spotInUse?.coins ?? 0, balance, relative: 1e-12))
        }
    }

    /// (e) Reordering positions changes no bit of the output.
    @Test func positionOrderDoesNotMatter() async {
        await propertyCheck(count: Self.checks, input: Self.seeds) { seed in
            let portfolio = Self.calm.portfolio(seed: seed)
            var shuffled = portfolio
            var generator = SeededGenerator(seed: seed ^ 0xA5A5)
            shuffled.positions.shuffle(using: &generator)
            let first = PositionBuilder.response(try Self.margin(portfolio, Self.calm), before: nil, greeksType: .blackScholes)
            let second = PositionBuilder.response(try Self.margin(shuffled, Self.calm), before: nil, greeksType: .blackScholes)
            #expect(JSONWriter.serialize(first) == JSONWriter.serialize(second))
        }
    }

    /// The grouped canonical order (hash once, sort distinct ids) is exactly the comparator's order, also
    /// when one instrument appears many times with equal and different sizes and prices.
    @Test func canonicalGroupsMatchTheComparator() async {
        await propertyCheck(count: Self.checks, input: Self.seeds) { seed in
            var portfolio = Self.calm.portfolio(seed: seed)
            var generator = SeededGenerator(seed: seed ^ 0x5A5A)
            for position in portfolio.positions {
                for _ in 0..<Int.random(in: 0...3, using: &generator) {
                    var copy = position
                    copy.sizeContracts = [position.sizeContracts, -position.sizeContracts, 1, 2][Int.random(in: 0...3, using: &generator)]
                    copy.averagePrice = [position.averagePrice, 1][Int.random(in: 0...1, using: &generator)]
                    portfolio.positions.append(copy)
                }
            }
            portfolio.positions.shuffle(using: &generator)
            let key = { (position: Position) in "\(position.instrument.id)|\(position.sizeContracts)|\(position.averagePrice)" }
            #expect(
                portfolio.canonicallyOrderedPositions().map(key) == portfolio.positions.sorted(by: Position.canonicallyOrdered).map(key))
            let groups = portfolio.canonicalGroups()
            #expect(groups.map(\.instrumentID) == Set(portfolio.positions.map(\.instrument.id.rawValue)).sorted())
        }
    }

    /// (f) The worst-cell P&Ls of a unit's positions (and spot in use) sum exactly to its mr1FinalResult.pnl.
    @Test func worstCellAttributionSumsToTheWorstCell() async {
        for universe in [Self.calm, Self.selloff] {
            await propertyCheck(count: Self.checks, input: Self.seeds) { seed in
                let result = try Self.margin(universe.portfolio(seed: seed), universe)
                for unit in result.units {
                    var sum = unit.positions.reduce(0.0) { $0 + $1.worstCellPnLUSD }
                    if let spot = unit.spotInUse { sum += spot.worstCellPnLUSD }
                    #expect(sum == unit.components.mr1Worst.pnlUSD, "\(unit.coin): \(sum) vs \(unit.components.mr1Worst.pnlUSD)")
                }
            }
        }
    }

    /// Marginal MMR: removing a position's line and recomputing from scratch gives the same unit MMR as the
    /// engine's subtract-and-re-derive shortcut.
    @Test func marginalMmrMatchesRecomputation() async {
        await propertyCheck(count: 15, input: Self.seeds) { seed in
            // Net first: the engine margins one line per instrument, and a line is what is removed.
            let portfolio = Self.calm.portfolio(seed: seed, maximumPositions: 6).nettedByInstrument()
            let result = try Self.margin(portfolio, Self.calm)
            for unit in result.units {
                for position in unit.positions {
                    var without = portfolio
                    if let index = without.positions.firstIndex(of: position.position) { without.positions.remove(at: index) }
                    let recomputed = try Self.margin(without, Self.calm).units.first { $0.coin == unit.coin }?.components.mmr ?? 0
                    #expect(
                        isClose(
                            position.marginalMmrUSD, unit.components.mmr - recomputed, relative: 1e-7,
                            absolute: 1e-6 * max(1, unit.components.mmr)))
                }
            }
        }
    }
}
