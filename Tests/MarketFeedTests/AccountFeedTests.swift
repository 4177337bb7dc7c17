import Foundation
import MarginEngine
import Testing

@testable import MarketFeed

/// An account's documented `account/positions` and `account/balance` answers as the engine margins them.
struct AccountFeedTests {
    static func market() throws -> (InstrumentCatalog, MarketSnapshot) {
        let assembled = MarketAssembler.assemble(try OKXDocsFixtureTests.documentedAnswers(), source: "OKX docs")
        return (assembled.catalog, try #require(assembled.snapshot))
    }

    static func swapPosition(_ size: String, side: String = "net", avgPx: String = "190", lever: String = "10") -> JSONValue {
        .object([
            ("instId", .string("BTC-USDT-SWAP")), ("instType", .string("SWAP")), ("pos", .string(size)), ("posSide", .string(side)),
            ("avgPx", .string(avgPx)), ("lever", .string(lever)), ("mgnMode", .string("cross")),
        ])
    }

    @Test func theDocumentedBalanceIsCashAndTheMarginPositionIsNamedNotAdded() throws {
        let (catalog, market) = try Self.market()
        let holdings = AccountHoldings(
            positions: try OKXDocsFixtureTests.rows("positions"),
            balances: try OKXDocsFixtureTests.rows("balance").flatMap { row -> [JSONValue] in
                if case .object(let account) = row, case .array(let details)? = account["details"] { return details }
                return []
            })
        let (portfolio, problems) = try holdings.portfolio(catalog: catalog, market: market)
        #expect(portfolio.positions.isEmpty)
        #expect(portfolio.cashBalances == ["USDT": 4850.435693622894])
        #expect(problems.contains { $0.subject == "BTC-USDT" && $0.detail.contains("MARGIN") })
        #expect(holdings.currencies == ["BTC", "USDT"])
    }

    @Test(arguments: [("net", "-3", -3.0), ("short", "3", -3.0), ("long", "3", 3.0), ("net", "2", 2.0)])
    func positionSidesGiveSignedSizes(side: String, size: String, expected: Double) throws {
        let (catalog, market) = try Self.market()
        let holdings = AccountHoldings(positions: [Self.swapPosition(size, side: side)], balances: [])
        let (portfolio, _) = try holdings.portfolio(catalog: catalog, market: market)
        #expect(portfolio.positions.map(\.sizeContracts) == [expected])
        #expect(portfolio.positions.first?.averagePrice == 190)
        #expect(portfolio.positions.first?.leverage == 10)
    }

    @Test func accruedInterestIsOwedAndTheChosenSpotInUseIsKept() throws {
        let (catalog, market) = try Self.market()
        let balance: JSONValue = .object([
            ("ccy", .string("USDT")), ("cashBal", .string("1000")), ("interest", .string("2.5")), ("clSpotInUseAmt", .string("")),
        ])
        let coin: JSONValue = .object([
            ("ccy", .string("BTC")), ("cashBal", .string("1.5")), ("interest", .string("0")), ("clSpotInUseAmt", .string("0.4")),
        ])
        let (portfolio, _) = try AccountHoldings(positions: [], balances: [balance, coin]).portfolio(catalog: catalog, market: market)
        #expect(portfolio.cashBalances == ["USDT": 997.5, "BTC": 1.5])
        #expect(portfolio.chosenSpotInUse == ["BTC": 0.4])
    }

    @Test func aPositionTheCatalogDoesNotListIsAnErrorNamingIt() throws {
        let (catalog, market) = try Self.market()
        let unknown: JSONValue = .object([("instId", .string("ETH-USDT-SWAP")), ("instType", .string("SWAP")), ("pos", .string("1"))])
        #expect {
            _ = try AccountHoldings(positions: [unknown], balances: []).portfolio(catalog: catalog, market: market)
        } throws: { error in
            (error as? EngineError)?.description.contains("ETH-USDT-SWAP") == true
        }
    }

    @Test func aBalanceWithoutAnIndexIsLeftOutAndNamed() throws {
        let (catalog, market) = try Self.market()
        let dust: JSONValue = .object([("ccy", .string("DOGE")), ("cashBal", .string("12")), ("interest", .string("0"))])
        let (portfolio, problems) = try AccountHoldings(positions: [], balances: [dust]).portfolio(catalog: catalog, market: market)
        #expect(portfolio.cashBalances.isEmpty)
        #expect(problems.contains { $0.subject == "DOGE" })
    }
}
