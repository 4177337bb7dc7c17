@testable import MarginEngine
import MarginTestSupport
import PropertyBased
import Testing

/// Scenario vectors priced once per market, and the allocation-free batch kernel, against the direct
/// per-account computation (issue: "bit-for-bit or within 1e-9 relative").
@Suite struct BatchMarginTests {
    static let table = ScenarioVectorTable(instruments: Fixtures.catalog.instruments, market: Fixtures.calmMarket, parameters: Fixtures.parameters)
    static let universe = RandomPortfolios(catalog: Fixtures.catalog, market: Fixtures.calmMarket, parameters: Fixtures.parameters)

    @Test func theTablePricesEveryListedLiveDerivative() {
        // Every derivative the calm snapshot marks is priced; the rest are reported, each with a reason.
        let marked = Fixtures.catalog.instruments.filter { $0.isDerivative && Fixtures.calmMarket.marks[$0.id.rawValue] != nil }
        #expect(Self.table.instruments.count == marked.count)
        #expect(Self.table.unpriced.allSatisfy { !$0.reason.isEmpty })
        #expect(Self.table.instruments.map(\.id) == Self.table.instruments.map(\.id).sorted())
    }

    static func book(_ portfolios: [Portfolio]) -> AccountBook {
        var book = AccountBook()
        for portfolio in portfolios {
            let added = book.append(portfolio, table: table)
            #expect(added)
        }
        return book
    }

    /// The kernel and the direct computation (each account priced on its own) agree bit for bit.
    @Test func kernelEqualsTheDirectComputation() async {
        await propertyCheck(count: 30, input: Gen.int(in: 0...Int.max)) { seed in
            let portfolio = Self.universe.portfolio(seed: UInt64(seed), maximumPositions: 20)
            let book = Self.book([portfolio])
            let kernel = BatchMargin(table: Self.table, parameters: Fixtures.parameters)
            var scratch = BatchMargin.Scratch(currencies: Self.table.currencies.count)
            let fast = kernel.figures(book, 0, scratch: &scratch)
            let direct = try PortfolioMargin.compute(book.portfolio(0, table: Self.table), market: Fixtures.calmMarket, parameters: Fixtures.parameters)
            let viaVectors = try PortfolioMargin.compute(
                book.portfolio(0, table: Self.table), market: Fixtures.calmMarket, parameters: Fixtures.parameters, risks: Self.table.risksByID)
            let expected = AccountFigures(
                equityUSD: direct.equityUSD, adjustedEquityUSD: direct.adjustedEquityUSD, derivativesMmrUSD: direct.derivativesMmrUSD,
                derivativesImrUSD: direct.derivativesImrUSD, borrowMmrUSD: direct.borrowMmrUSD, borrowImrUSD: direct.borrowImrUSD,
                totalMmrUSD: direct.totalMmrUSD, totalImrUSD: direct.totalImrUSD, marginRatio: direct.marginRatio)
            #expect(fast == expected, "kernel \(String(describing: fast))\ndirect \(expected)")
            #expect(viaVectors.totalMmrUSD == direct.totalMmrUSD && viaVectors.adjustedEquityUSD == direct.adjustedEquityUSD)
        }
    }

    @Test func conservativeAggregationAgreesToo() throws {
        var parameters = Fixtures.parameters
        parameters.spotHedgeAggregation = .conservativeMax
        let table = ScenarioVectorTable(instruments: Fixtures.catalog.instruments, market: Fixtures.calmMarket, parameters: parameters)
        let instrument = try Fixtures.catalog.instrument("BTC-USDT-SWAP", path: "")
        let portfolio = Portfolio(positions: [Position(instrument: instrument, sizeContracts: -500, averagePrice: 88_000)], cashBalances: ["BTC": 4])
        var book = AccountBook()
        book.append(positions: [(table.index(of: "BTC-USDT-SWAP") ?? -1, -500, 88_000)], balances: [(table.currencyIndex(of: "BTC") ?? -1, 4)])
        var scratch = BatchMargin.Scratch(currencies: table.currencies.count)
        let fast = BatchMargin(table: table, parameters: parameters).figures(book, 0, scratch: &scratch)
        let direct = try PortfolioMargin.compute(portfolio, market: Fixtures.calmMarket, parameters: parameters)
        #expect(fast?.totalMmrUSD == direct.totalMmrUSD)
    }

    @Test func changedInstrumentsFollowTheMarket() throws {
        let moved = ScenarioVectorTable(
            instruments: Fixtures.catalog.instruments, market: try Fixtures.calmMarket.shocked(by: 0.01, onlyCoin: "ETH"), parameters: Fixtures.parameters)
        let changed = moved.changedInstruments(since: Self.table)
        #expect(!changed.isEmpty)
        #expect(changed.allSatisfy { moved.instruments[Int($0)].underlying == "ETH" })
        #expect(Self.table.changedInstruments(since: Self.table).isEmpty)
    }
}

/// Margin ratio and leverage are reported only when the division stays finite: a requirement or equity so
/// small that the quotient overflows is reported like zero (nil), never as infinity.
@Suite struct ReportedRatioTests {
    @Test(arguments: [
        (2.0, 4.0, 0.5 as Double?),
        (1e300, 1e-300, nil),
        (30_000.0, 2.65e-320, nil),
        (-30_000.0, 2.65e-320, nil),
        (1.0, 0.0, nil),
        (3.0, 2.0, 1.5),
    ] as [(Double, Double, Double?)])
    func ratioIsFiniteOrNil(numerator: Double, denominator: Double, expected: Double?) {
        #expect(reportedRatio(numerator, over: denominator) == expected)
    }
}
