import MarginTestSupport
import PropertyBased
import Testing

@testable import MarginEngine

/// Scenario vectors priced once per market, and the allocation-free batch kernel, against the direct
/// per-account computation (issue: "bit-for-bit or within 1e-9 relative").
@Suite struct BatchMarginTests {
    static let table = ScenarioVectorTable(
        instruments: Fixtures.catalog.instruments, market: Fixtures.calmMarket, parameters: Fixtures.parameters)
    static let universe = RandomPortfolios(catalog: Fixtures.catalog, market: Fixtures.calmMarket, parameters: Fixtures.parameters)

    @Test func theTablePricesEveryListedLiveDerivative() {
        // Every derivative the calm snapshot marks is priced; the rest are reported, each with a reason.
        let marked = Fixtures.catalog.instruments.filter { $0.isDerivative && Fixtures.calmMarket.marks[$0.id.rawValue] != nil }
        #expect(Self.table.pricedCount == marked.count)
        // The universe is every derivative of the catalog; what the market cannot price is listed with a reason.
        #expect(Self.table.instruments.count == Fixtures.catalog.instruments.filter(\.isDerivative).count)
        #expect(Self.table.unpriced.count == Self.table.instruments.count - marked.count)
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
            let direct = try PortfolioMargin.compute(
                book.portfolio(0, table: Self.table), market: Fixtures.calmMarket, parameters: Fixtures.parameters)
            let viaVectors = try PortfolioMargin.compute(
                book.portfolio(0, table: Self.table), market: Fixtures.calmMarket, parameters: Fixtures.parameters,
                risks: Self.table.risksByID)
            let expected = direct.figures
            #expect(fast == expected, "kernel \(String(describing: fast))\ndirect \(expected)")
            #expect(viaVectors.totalMmrUSD == direct.totalMmrUSD && viaVectors.adjustedEquityUSD == direct.adjustedEquityUSD)
        }
    }

    @Test func conservativeAggregationAgreesToo() throws {
        var parameters = Fixtures.parameters
        parameters.spotHedgeAggregation = .conservativeMax
        let table = ScenarioVectorTable(instruments: Fixtures.catalog.instruments, market: Fixtures.calmMarket, parameters: parameters)
        let instrument = try Fixtures.catalog.instrument("BTC-USDT-SWAP", path: "")
        let portfolio = Portfolio(
            positions: [Position(instrument: instrument, sizeContracts: -500, averagePrice: 88_000)], cashBalances: ["BTC": 4])
        var book = AccountBook()
        book.append(
            positions: [(table.index(of: "BTC-USDT-SWAP") ?? -1, -500, 88_000)], balances: [(table.currencyIndex(of: "BTC") ?? -1, 4)])
        var scratch = BatchMargin.Scratch(currencies: table.currencies.count)
        let fast = BatchMargin(table: table, parameters: parameters).figures(book, 0, scratch: &scratch)
        let direct = try PortfolioMargin.compute(portfolio, market: Fixtures.calmMarket, parameters: parameters)
        #expect(fast?.totalMmrUSD == direct.totalMmrUSD)
    }

    /// Classic accounts through the kernel equal ``ClassicMargin`` bit for bit, leverage and long options included.
    @Test func classicKernelEqualsTheDirectComputation() async {
        await propertyCheck(count: 30, input: Gen.int(in: 0...Int.max)) { seed in
            var portfolio = Self.universe.portfolio(seed: UInt64(seed), maximumPositions: 20).nettedByInstrument()
            for index in portfolio.positions.indices where index % 2 == 0 {
                portfolio.positions[index].leverage = Double(1 + (seed + index) % 120)
            }
            var book = AccountBook()
            let added = book.append(portfolio, table: Self.table, level: .classic)
            #expect(added)
            var scratch = BatchMargin.Scratch(currencies: Self.table.currencies.count)
            let fast = BatchMargin(table: Self.table, parameters: Fixtures.parameters).figures(book, 0, scratch: &scratch)
            let direct = try ClassicMargin.compute(
                book.portfolio(0, table: Self.table), market: Fixtures.calmMarket, parameters: Fixtures.parameters)
            #expect(fast == direct.figures, "kernel \(String(describing: fast))\ndirect \(direct.figures)")
        }
    }

    /// Rewriting accounts in place or at the end, then compacting, never changes any account's figures.
    @Test func replacingAndCompactingKeepsEveryAccount() async {
        let kernel = BatchMargin(table: Self.table, parameters: Fixtures.parameters)
        var book = AccountBook()
        var expected: [Portfolio] = []
        for seed in 0..<40 {
            let portfolio = Self.universe.portfolio(seed: UInt64(seed), maximumPositions: 8).nettedByInstrument()
            book.append(portfolio, table: Self.table)
            expected.append(portfolio)
        }
        for seed in 40..<120 {
            let account = seed % 40
            let portfolio = Self.universe.portfolio(seed: UInt64(seed), maximumPositions: seed % 3 == 0 ? 2 : 16).nettedByInstrument()
            let rows = AccountBook.rows(of: portfolio, table: Self.table)
            book.replace(account, lines: rows?.lines ?? [], balances: rows?.balances ?? [], level: .portfolioMargin)
            expected[account] = portfolio
        }
        #expect(book.garbageRows > 0)
        var scratch = BatchMargin.Scratch(currencies: Self.table.currencies.count)
        let before = (0..<book.count).map { kernel.figures(book, $0, scratch: &scratch) }
        book.compact()
        #expect(book.garbageRows == 0)
        let after = (0..<book.count).map { kernel.figures(book, $0, scratch: &scratch) }
        #expect(before == after)
        for (account, portfolio) in expected.enumerated() {
            var single = AccountBook()
            single.append(portfolio, table: Self.table)
            let alone = kernel.figures(single, 0, scratch: &scratch)
            #expect(after[account] == alone, "account \(account)")
        }
    }

    /// Updating a table reprices only the instruments whose inputs moved; the rest share their vectors, and the
    /// result equals a table built from scratch.
    @Test func anUpdatedTableRepricesOnlyWhatMoved() throws {
        let shocked = try Fixtures.calmMarket.shocked(by: -0.03, onlyCoin: "ETH")
        let updated = ScenarioVectorTable(updating: Self.table, market: shocked, parameters: Fixtures.parameters)
        let fresh = ScenarioVectorTable(instruments: Fixtures.catalog.instruments, market: shocked, parameters: Fixtures.parameters)
        var repriced = 0
        for index in Self.table.instruments.indices {
            let instrument = Self.table.instruments[index]
            guard let old = Self.table.risks[index], let new = updated.risks[index] else {
                #expect(Self.table.risks[index] == nil && updated.risks[index] == nil)
                continue
            }
            if old !== new { repriced += 1 }
            #expect((old === new) == (instrument.underlying != "ETH"), "\(instrument.id)")
            #expect(new.scenarioPnLUSD == fresh.risks[index]?.scenarioPnLUSD, "\(instrument.id)")
        }
        #expect(repriced > 0)
        #expect(updated.changedInstruments(since: Self.table) == fresh.changedInstruments(since: Self.table))
    }

    @Test func changedInstrumentsFollowTheMarket() throws {
        let moved = ScenarioVectorTable(
            instruments: Fixtures.catalog.instruments, market: try Fixtures.calmMarket.shocked(by: 0.01, onlyCoin: "ETH"),
            parameters: Fixtures.parameters)
        let changed = moved.changedInstruments(since: Self.table)
        #expect(!changed.isEmpty)
        #expect(changed.allSatisfy { moved.instruments[Int($0)].underlying == "ETH" })
        #expect(Self.table.changedInstruments(since: Self.table).isEmpty)
    }
}

/// Margin ratio and leverage are reported only when the division stays finite: a requirement or equity so
/// small that the quotient overflows is reported like zero (nil), never as infinity.
@Suite struct ReportedRatioTests {
    @Test(
        arguments: [
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
