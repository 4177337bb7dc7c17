import Foundation
import MarginDefaults
import MarginEngine
import MarginTestSupport
import Testing

@testable import Backtest

/// How a path moves the base snapshot: coins, stablecoins, option volatilities and time.
struct PathMarketTests {
    static let perpetual = "BTC-USDT-SWAP"
    static let usdcPerpetual = "BTC-USDC-SWAP"
    static let ethPerpetual = "ETH-USDT-SWAP"
    static let option = "BTC-USD-260327-80000-P"
    static let shortOption = "BTC-USD-251231-88000-C"

    static func market(volatility: VolatilityRegime = .standard) throws -> (PathMarket, MarketSnapshot, InstrumentCatalog) {
        let catalog = try ShippedData.catalog()
        let base = try ShippedData.market(named: ShippedData.defaultMarketName)
        let instruments = [perpetual, usdcPerpetual, ethPerpetual, option, shortOption].compactMap { catalog.instrument($0) }
        let restricted = try base.restricted(to: instruments)
        return (
            try PathMarket(base: restricted, catalog: InstrumentCatalog(instruments: instruments), volatility: volatility), restricted,
            catalog
        )
    }

    static func option(_ snapshot: MarketSnapshot, _ id: String, catalog: InstrumentCatalog) throws -> OptionMarket {
        let instrument = try #require(catalog.instrument(id))
        return try #require(try snapshot.market(for: instrument, path: id).option)
    }

    @Test func movesOneCoinWithItsBasisHeldAndLeavesTheOthers() throws {
        let (path, base, catalog) = try Self.market()
        let moved = try path.snapshot(at: base.valuationTime, factors: ["BTC": 0.5])
        let btc = try base.indexUSD("BTC")
        #expect(isClose(try moved.indexUSD("BTC"), btc * 0.5, relative: 1e-12))
        #expect(try moved.indexUSD("ETH") == base.indexUSD("ETH"))
        // A perpetual's mark moves by the same absolute amount as its quote's index: the basis is held.
        let instrument = try #require(catalog.instrument(Self.perpetual))
        let before = try base.market(for: instrument, path: "")
        let after = try moved.market(for: instrument, path: "")
        #expect(isClose(after.markPrice - before.markPrice, -0.5 * before.quoteIndex, relative: 1e-9))
        #expect(moved.marks[Self.ethPerpetual]?.markPrice == base.marks[Self.ethPerpetual]?.markPrice)
    }

    @Test func linkedVolatilityRisesAsTheCoinFallsAndStaysWhenItRises() throws {
        let (path, base, catalog) = try Self.market(volatility: .spotLinked(elasticity: 1))
        let sigma = try Self.option(base, Self.option, catalog: catalog).volatility
        let down = try path.snapshot(at: base.valuationTime, factors: ["BTC": 0.5])
        let up = try path.snapshot(at: base.valuationTime, factors: ["BTC": 1.4])
        #expect(isClose(try Self.option(down, Self.option, catalog: catalog).volatility, 2 * sigma, relative: 1e-12))
        #expect(try Self.option(up, Self.option, catalog: catalog).volatility == sigma)
        // The option is priced by the model at its moved forward: a put is worth more after the fall.
        let instrument = try #require(catalog.instrument(Self.option))
        #expect(try down.market(for: instrument, path: "").markPrice > base.market(for: instrument, path: "").markPrice)
    }

    @Test func aFixedRegimeShiftsEveryVolatilityThroughout() throws {
        let (path, base, catalog) = try Self.market(volatility: .fixed(shiftAbs: 0.1))
        let sigma = try Self.option(base, Self.option, catalog: catalog).volatility
        for factor in [0.5, 1.0, 1.3] {
            let moved = try path.snapshot(at: base.valuationTime, factors: ["BTC": factor])
            #expect(isClose(try Self.option(moved, Self.option, catalog: catalog).volatility, sigma + 0.1, relative: 1e-12))
        }
    }

    @Test func aStablecoinMovesItsIndexAndInverselyTheMarksQuotedInIt() throws {
        let (path, base, _) = try Self.market()
        let moved = try path.snapshot(at: base.valuationTime, factors: ["USDC": 0.87])
        #expect(isClose(try moved.indexUSD("USDC"), try base.indexUSD("USDC") * 0.87, relative: 1e-12))
        let before = try #require(base.marks[Self.usdcPerpetual]?.markPrice)
        let after = try #require(moved.marks[Self.usdcPerpetual]?.markPrice)
        #expect(isClose(after, before / 0.87, relative: 1e-12))
        // The coin's USD price is where it was; USDT-quoted marks too.
        #expect(try moved.indexUSD("BTC") == base.indexUSD("BTC"))
        #expect(moved.marks[Self.perpetual]?.markPrice == base.marks[Self.perpetual]?.markPrice)
    }

    @Test func timePassesAndExpiredInstrumentsLeave() throws {
        let (path, base, _) = try Self.market()
        #expect(base.marks[Self.shortOption] != nil)
        let later = UnixMillis(base.valuationTime.rawValue + 3 * 86_400_000)
        let moved = try path.snapshot(at: later, factors: [:])
        #expect(moved.valuationTime == later)
        #expect(moved.marks[Self.shortOption] == nil)
        #expect(moved.marks[Self.option] != nil)
    }

    @Test(arguments: [
        ("linked", VolatilityRegime.spotLinked(elasticity: 1)), ("linked:0.5", .spotLinked(elasticity: 0.5)),
        ("fixed:0.2", .fixed(shiftAbs: 0.2)), ("fixed:-0.05", .fixed(shiftAbs: -0.05)),
    ])
    func parsesVolatilityRules(argument: String, expected: VolatilityRegime) {
        #expect(VolatilityRegime(argument: argument) == expected)
        #expect(VolatilityRegime(argument: expected.argument) == expected)
    }

    @Test(arguments: ["", "linked:-1", "linked:x", "fixed", "fixed:nan", "fixed:-1", "sticky:1", "linked:9"])
    func refusesMalformedVolatilityRules(argument: String) {
        #expect(VolatilityRegime(argument: argument) == nil)
    }

    @Test func volatilityStaysWithinTheEnginesBounds() {
        #expect(VolatilityRegime.spotLinked(elasticity: 5).volatility(base: 1, factor: 0.01) == VolatilityRegime.bounds.upperBound)
        #expect(VolatilityRegime.fixed(shiftAbs: -0.9).volatility(base: 0.5, factor: 1) == VolatilityRegime.bounds.lowerBound)
    }
}
