import MarginTestSupport
import Testing

@testable import MarginEngine

/// The figures-only evaluation the liquidation planner sizes its actions with (``MarginFigures``) against the
/// full computation: bit for bit, on random portfolios, with one evaluator reused across portfolios as the
/// planner reuses it.
@Suite struct MarginFiguresTests {
    static let parameters = Fixtures.parameters
    static let universe = RandomPortfolios(catalog: Fixtures.catalog, market: Fixtures.calmMarket, parameters: Fixtures.parameters)
    static let table = ScenarioVectorTable(
        instruments: Fixtures.catalog.instruments, market: Fixtures.calmMarket, parameters: Fixtures.parameters)

    /// Every field of the figures, as bits (`==` would let −0 equal +0).
    static func bits(_ figures: AccountFigures) -> [UInt64?] {
        [
            figures.equityUSD.bitPattern, figures.adjustedEquityUSD.bitPattern, figures.derivativesMmrUSD.bitPattern,
            figures.derivativesImrUSD.bitPattern, figures.borrowMmrUSD.bitPattern, figures.borrowImrUSD.bitPattern,
            figures.totalMmrUSD.bitPattern, figures.totalImrUSD.bitPattern, figures.marginRatio?.bitPattern,
            figures.liabilityUSD.bitPattern,
            figures.accruesInterest ? 1 : 0,
        ]
    }

    /// Variants of a random portfolio that take different paths: as drawn (lines of one instrument included),
    /// netted and held as the ledger holds it, with a chosen spot in use, with coin liabilities.
    static func variants(seed: UInt64) -> [Portfolio] {
        var generator = SeededGenerator(seed: seed ^ 0x9E37_79B9_7F4A_7C15)
        let drawn = universe.portfolio(seed: seed, maximumPositions: Int(seed % 3 == 0 ? 20 : 6))
        var ledgered = drawn.nettedByInstrument()
        ledgered.positions = ledgered.positions.map { position in
            Position(
                instrument: position.instrument,
                ledger: LedgerPosition(
                    sizeContracts: ExactDecimal(position.sizeContracts), averagePrice: ExactDecimal(position.averagePrice)),
                source: position.source)
        }
        var chosen = ledgered
        for coin in ["BTC", "ETH", "SOL"] where chosen.cashBalances[coin] != nil {
            chosen.chosenSpotInUse[coin] = abs(chosen.cashBalances[coin] ?? 0) * Double.random(in: 0...1, using: &generator)
        }
        var borrowed = ledgered
        borrowed.cashBalances["USDT"] = -Double(Int.random(in: 0...400_000, using: &generator))
        borrowed.cashBalances["ETH"] = -Double(Int.random(in: 0...30, using: &generator))
        return [drawn, ledgered, chosen, borrowed, Portfolio(cashBalances: drawn.cashBalances)]
    }

    @Test func figuresEqualTheFullComputationBitForBit() throws {
        var conservative = Self.parameters
        conservative.spotHedgeAggregation = .conservativeMax
        // One evaluator per market and parameter set, reused across every portfolio (scratch space must not leak).
        var evaluators = [
            (Fixtures.calmMarket, Self.parameters), (Fixtures.selloffMarket, Self.parameters), (Fixtures.calmMarket, conservative),
        ].map { MarginFigures(market: $0.0, parameters: $0.1) }
        var seeds = SeededGenerator(seed: 20_260_516)
        for _ in 0..<60 {
            let seed = UInt64.random(in: 0...UInt64(Int.max), using: &seeds)
            for portfolio in Self.variants(seed: seed) {
                for index in evaluators.indices {
                    let market = evaluators[index].market
                    let parameters = evaluators[index].parameters
                    let risks = index == 0 ? Self.table.risksByID : [:]
                    let full: AccountFigures
                    do {
                        full = try PortfolioMargin.compute(portfolio, market: market, parameters: parameters, risks: risks).figures
                    } catch {
                        // What the full computation refuses, the figures refuse with the same error.
                        do {
                            _ = try evaluators[index].figures(portfolio, risks: risks)
                            Issue.record("seed \(seed): the full computation threw \(error), the figures did not")
                        } catch let refused {
                            #expect(refused == error)
                        }
                        continue
                    }
                    let fast = try evaluators[index].figures(portfolio, risks: risks)
                    #expect(Self.bits(fast) == Self.bits(full), "seed \(seed), evaluator \(index)\nfast \(fast)\nfull \(full)")
                    let once = try PortfolioMargin.figures(portfolio, market: market, parameters: parameters, risks: risks)
                    #expect(Self.bits(once) == Self.bits(full))
                }
            }
        }
    }
}
