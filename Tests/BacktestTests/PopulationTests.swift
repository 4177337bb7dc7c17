import Foundation
import MarginDefaults
import MarginEngine
import MarginTestSupport
import Testing

@testable import Backtest

/// The generated population (reproducible, the stated mix, books the exchange accepts) and populations given as
/// Position Builder requests (each refusal naming the request and field).
struct PopulationTests {
    static let coins = ["BTC", "ETH"]

    static func inputs() throws -> (
        universe: [Instrument], market: MarketSnapshot, parameters: MarginParameters, catalog: InstrumentCatalog
    ) {
        let catalog = try ShippedData.catalog()
        let base = try ShippedData.market(named: ShippedData.defaultMarketName)
        let pathEnd = UnixMillis(base.valuationTime.rawValue + 10 * 86_400_000)
        let universe = try Population.universe(coins: coins, catalog: catalog, market: base, pathEnd: pathEnd)
        let market = try PathMarket(
            base: try base.restricted(to: universe), catalog: InstrumentCatalog(instruments: universe), volatility: .standard)
        return (universe, try market.snapshot(at: base.valuationTime, factors: [:]), try ShippedData.parameters(), catalog)
    }

    static func generate(_ count: Int, seed: UInt64) throws -> Population {
        let (universe, market, parameters, _) = try inputs()
        return try Population.generate(count: count, seed: seed, coins: coins, universe: universe, market: market, parameters: [parameters])
    }

    static func fingerprint(_ population: Population) -> [String] {
        population.accounts.map { account in
            account.kindName + "|" + account.deposits.map { "\($0.currency)=\($0.amount)" }.joined(separator: ",") + "|"
                + account.orders.map { "\($0.instrumentID)=\($0.sizeContracts)" }.joined(separator: ",")
        }
    }

    @Test func aSeedReproducesThePopulation() throws {
        let first = try Self.generate(200, seed: 42)
        let again = try Self.generate(200, seed: 42)
        let other = try Self.generate(200, seed: 43)
        #expect(Self.fingerprint(first) == Self.fingerprint(again))
        #expect(Self.fingerprint(first) != Self.fingerprint(other))
    }

    /// Each kind's share is within five binomial standard deviations of its stated weight, BTC's share likewise.
    @Test func theMixIsTheStatedOne() throws {
        let count = 2_000
        let population = try Self.generate(count, seed: 5)
        for kind in BookKind.allCases {
            let observed = Double(population.accounts.filter { $0.kind == kind }.count)
            let expected = kind.weight * Double(count)
            let deviation = (Double(count) * kind.weight * (1 - kind.weight)).squareRoot()
            #expect(abs(observed - expected) <= 5 * deviation, "\(kind): \(observed) against \(expected)")
        }
        let btc = Double(population.accounts.filter { $0.coin == "BTC" }.count)
        let share = Population.Generator.btcShare
        #expect(abs(btc - share * Double(count)) <= 5 * (Double(count) * share * (1 - share)).squareRoot())
        let equities = population.accounts.map { account in
            account.deposits.reduce(0.0) { $0 + LedgerBoundary.risk($1.amount) * (($1.currency == "USDT") ? 1 : 0) }
        }
        #expect(equities.allSatisfy { $0 <= Population.Generator.equityRangeUSD.upperBound })
    }

    @Test func everyBookHasTheLegsOfItsKind() throws {
        let population = try Self.generate(400, seed: 9)
        let (universe, _, _, _) = try Self.inputs()
        func instrument(_ id: String) -> Instrument? { universe.first { $0.id.rawValue == id } }
        for account in population.accounts {
            let kinds = Set(account.orders.compactMap { instrument($0.instrumentID)?.kind })
            switch account.kind {
            case .directional: #expect(kinds == [.perpetual], "\(account.source)")
            case .hedged: #expect(kinds == [.perpetual, .option], "\(account.source)")
            case .basis: #expect(kinds == [.perpetual] || kinds == [.perpetual, .future], "\(account.source)")
            case .optionSelling:
                #expect(kinds == [.option] && account.orders.allSatisfy { $0.sizeContracts.isNegative }, "\(account.source)")
            case .optionBuying:
                #expect(kinds == [.option] && account.orders.allSatisfy { !$0.sizeContracts.isNegative }, "\(account.source)")
            case nil: Issue.record("a generated account without a kind")
            }
            #expect(account.orders.allSatisfy { !$0.sizeContracts.isZero })
            #expect(account.deposits.allSatisfy { $0.amount.units > 0 })
        }
    }

    static func writeRequests(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("population-\(UUID().uuidString).json").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func loadsRequestsWithExactDepositsAsAnArrayOrOnePerLine() throws {
        let (_, market, _, catalog) = try Self.inputs()
        let array = try Self.writeRequests(
            """
            [{"simAsset": [{"ccy": "USDT", "amt": "25000.123456"}, {"ccy": "BTC", "amt": 0.5}], "simPos": [{"instId": "BTC-USDT-SWAP", "pos": "12.34"}]}]
            """)
        let population = try Population.load(file: array, catalog: catalog, market: market)
        let account = try #require(population.accounts.first)
        #expect(account.deposits.map(\.currency) == ["USDT", "BTC"])
        #expect(account.deposits[0].amount == ExactDecimal("25000.123456"))
        #expect(account.orders == [.init(instrumentID: "BTC-USDT-SWAP", sizeContracts: ExactDecimal("12.34") ?? .zero)])
        let lines = try Self.writeRequests(
            """
            {"simAsset": [{"ccy": "USDT", "amt": "20000"}]}

            {"simAsset": [{"ccy": "USDT", "amt": "30000"}], "simPos": [{"instId": "ETH-USDT-SWAP", "pos": "-5"}]}
            """)
        #expect(try Population.load(file: lines, catalog: catalog, market: market).accounts.count == 2)
    }

    /// (request, a fragment the error must contain: the request's place and the field).
    static let refusals: [(String, String)] = [
        (#"[{"simAsset": [{"ccy": "USDT", "amt": "-5000"}, {"ccy": "BTC", "amt": "1"}]}]"#, "[0].simAsset[0].amt"),
        (#"[{"simAsset": [{"ccy": "USDT", "amt": "20000"}], "idxVol": 0.1}]"#, "[0].idxVol"),
        (#"[{"simAsset": [{"ccy": "USDT", "amt": "5000"}]}]"#, "10000 USD of net equity"),
        (#"[{"simAsset": [{"ccy": "USDT", "amt": "20000"}]}, {"simAsset": [{"ccy": "USDT", "amt": "20000"}], "simPosition": []}]"#, "[1]"),
        ("{\"simAsset\": [{\"ccy\": \"USDT\", \"amt\": \"20000\"}]}\n{\"simAsset\": [", ":2"),
    ]

    @Test(arguments: refusals)
    func refusesARequestThatCannotBeAnAccount(text: String, fragment: String) throws {
        let (_, market, _, catalog) = try Self.inputs()
        let file = try Self.writeRequests(text)
        do {
            _ = try Population.load(file: file, catalog: catalog, market: market)
            Issue.record("accepted \(text)")
        } catch {
            #expect("\(error)".contains(fragment), "\(error)")
            #expect("\(error)".contains(file), "\(error)")
        }
    }

    @Test func refusesAPositionOnACoinThePathDoesNotMove() throws {
        let (_, _, _, catalog) = try Self.inputs()
        let base = try ShippedData.market(named: ShippedData.defaultMarketName)
        let file = try Self.writeRequests(
            #"[{"simAsset": [{"ccy": "USDT", "amt": "20000"}], "simPos": [{"instId": "SOL-USDT-SWAP", "pos": "1"}]}]"#)
        #expect {
            try Population.universe(file: file, coins: ["BTC"], catalog: catalog, market: base)
        } throws: { error in
            "\(error)".contains("SOL, which the path does not move") && "\(error)".contains("[0].simPos[0]")
        }
    }
}
