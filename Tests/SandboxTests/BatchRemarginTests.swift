import MarginEngine
import MarginTestSupport
import Sandbox
import Testing

/// Parallel batch re-margining and its incremental path, against the per-account kernel.
@Suite struct BatchRemarginTests {
    static let parameters = Fixtures.parameters
    static let table = ScenarioVectorTable(instruments: Fixtures.catalog.instruments, market: Fixtures.calmMarket, parameters: parameters)

    static func book(accounts: Int) -> AccountBook {
        let universe = RandomPortfolios(catalog: Fixtures.catalog, market: Fixtures.calmMarket, parameters: parameters)
        var book = AccountBook()
        for seed in 0..<accounts {
            let added = book.append(universe.portfolio(seed: UInt64(seed), maximumPositions: 20), table: table)
            precondition(added, "fixture portfolios use priced instruments only")
        }
        return book
    }

    static let book = book(accounts: 600)

    /// Each account alone through the kernel, in order: the reference for the parallel runs.
    static func oneByOne(_ book: AccountBook, kernel: BatchMargin) -> [AccountFigures?] {
        var scratch = BatchMargin.Scratch(currencies: kernel.table.currencies.count)
        return (0..<book.count).map { kernel.figures(book, $0, scratch: &scratch) }
    }

    @Test(arguments: [1, 2, 3])
    func parallelRunsKeepAccountOrderAndBits(workers: Int) {
        let kernel = BatchMargin(table: Self.table, parameters: Self.parameters)
        #expect(Self.book.count == 600)
        let expected = Self.oneByOne(Self.book, kernel: kernel)
        #expect(expected.allSatisfy { $0 != nil })
        #expect(BatchRemargin.run(Self.book, kernel: kernel, workers: workers) == expected)
    }

    @Test func incrementalUpdateRecomputesOnlyHoldersOfWhatMoved() throws {
        let kernel = BatchMargin(table: Self.table, parameters: Self.parameters)
        var incremental = IncrementalRemargin(book: Self.book, kernel: kernel, workers: 2)
        // Nothing moved: nothing recomputed.
        #expect(incremental.update(to: Self.table, workers: 2) == 0)

        // ETH falls 5 %; every other index and mark stays.
        let shocked = try Fixtures.calmMarket.shocked(by: -0.05, onlyCoin: "ETH")
        let next = ScenarioVectorTable(instruments: Fixtures.catalog.instruments, market: shocked, parameters: Self.parameters)
        let holders = (0..<Self.book.count).filter { account in
            let instruments = Self.book.positionStart[account]..<Self.book.positionEnd[account]
            let balances = Self.book.balanceStart[account]..<Self.book.balanceEnd[account]
            return instruments.contains { next.instruments[Int(Self.book.instrument[$0])].underlying == "ETH" }
                || balances.contains { next.currencies[Int(Self.book.balanceCurrency[$0])] == "ETH" }
        }
        #expect(!holders.isEmpty && holders.count < Self.book.count, "the fixture must have accounts on both sides")
        let recomputed = incremental.update(to: next, workers: 2)
        #expect(recomputed == holders.count)
        // The result equals a full re-margin on the new market, bit for bit.
        let full = BatchRemargin.run(Self.book, kernel: BatchMargin(table: next, parameters: Self.parameters), workers: 2)
        #expect(incremental.figures == full)
        // And the untouched accounts kept their old figures (which are also their new ones).
        let before = Self.oneByOne(Self.book, kernel: kernel)
        let untouched = Set(0..<Self.book.count).subtracting(holders)
        #expect(untouched.allSatisfy { incremental.figures[$0] == before[$0] })
    }
}
