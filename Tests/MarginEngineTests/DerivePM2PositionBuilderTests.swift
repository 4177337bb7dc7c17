import MarginEngine
import MarginTestSupport
import RealModule
import Testing

/// An OKX Position Builder request under Derive PM2: what maps, what is refused, and that the responses
/// agree with each other (build, idxVol, graph, model comparison).
@Suite struct DerivePM2PositionBuilderTests {
    static let parameters = Fixtures.derivePM2Parameters
    static let market = Fixtures.calmMarket
    static let call = "BTC-USD-260327-90000-C"
    static let put = "BTC-USD-260327-80000-P"

    static func request(_ json: String) throws -> PositionBuilderRequest { try PositionBuilderRequest(bytes: Array(json.utf8)) }

    static let book = bookWith("")

    static func bookWith(_ extra: String) -> String {
        """
        {\(extra)"simPos": [
            {"instId": "BTC-USDC-SWAP", "pos": "-5000", "avgPx": "88000"},
            {"instId": "\(call)", "pos": "-100"},
            {"instId": "\(put)", "pos": "100"},
            {"instId": "ETH-USD-260130-3000-C", "pos": "-50"}],
         "simAsset": [{"ccy": "USDC", "amt": "60000"}, {"ccy": "BTC", "amt": "0.5"}, {"ccy": "USDT", "amt": "1000"}]}
        """
    }

    static func account(_ json: String = book) throws -> DerivePM2PositionBuilder.Account {
        try DerivePM2PositionBuilder.account(for: request(json), catalog: Fixtures.catalog, market: market, parameters: parameters)
    }

    struct Refusal: Sendable, CustomTestStringConvertible {
        var instrument: String
        var reason: String
        var testDescription: String { instrument }
    }

    @Test(arguments: [
        Refusal(instrument: "BTC-USDT-SWAP", reason: "settles in USDT"),
        Refusal(instrument: "BTC-USD-SWAP", reason: "coin-margined"),
        Refusal(instrument: "BTC-USD-260327", reason: "coin-margined"),
        Refusal(instrument: "BTC-USDC-260327", reason: "dated future"),
        Refusal(instrument: "ETH-USDT-260327", reason: "settles in USDT"),
    ])
    func unmappableInstrumentsAreRefusedByName(_ refusal: Refusal) throws {
        let json = #"{"simPos": [{"instId": "BTC-USDC-SWAP", "pos": "1"}, {"instId": "\#(refusal.instrument)", "pos": "1"}]}"#
        do {
            _ = try Self.account(json)
            Issue.record("\(refusal.instrument) was mapped")
        } catch let error as EngineError {
            guard case .unsupported(let path, let value, let reason) = error else {
                Issue.record("\(error)")
                return
            }
            #expect(path == "simPos[1].instId" && value == "\"\(refusal.instrument)\"" && reason.contains(refusal.reason), "\(error)")
        }
    }

    @Test func positionsAndBalancesMapToDeriveHoldings() throws {
        let account = try Self.account()
        #expect(account.portfolios.map(\.underlying) == ["BTC", "ETH", "USDC"])
        let btc = account.portfolios[0]
        #expect(btc.perp?.positionCoins == -0.5)
        let perpMark = try #require(Self.market.marks["BTC-USDC-SWAP"]?.markPrice)
        #expect(btc.perp?.priceUSD == perpMark)
        #expect(isClose(btc.perp?.unrealisedValueUSD ?? 0, -0.5 * (perpMark - 88_000), relative: 1e-15))
        #expect(btc.spotUSD == (try Self.market.indexUSD("BTC")))
        #expect(btc.stablePriceUSD == (try Self.market.indexUSD("USDC")))

        let expiry = try #require(btc.expiries.first)
        let callInstrument = try Fixtures.catalog.instrument(Self.call, path: "test")
        let expiryTime = try #require(callInstrument.expiry)
        #expect(expiry.secondsToExpiry == (expiryTime.rawValue - Self.market.valuationTime.rawValue) / 1000)
        let callOption = try #require(expiry.options.first { $0.kind == .call })
        #expect(callOption.amountCoins == -100 * callInstrument.coinsPerContract)
        let resolved = try #require(try Self.market.market(for: callInstrument, path: "test").option)
        #expect(callOption.volatility == resolved.volatility)
        #expect(callOption.strikeUSD == 90_000)

        let collateral = try #require(btc.collaterals.first)
        #expect(collateral.name == "BTC" && collateral.amount == 0.5 && collateral.haircuts == Self.parameters.baseCollateral["BTC"])
        let cash = account.portfolios[2]
        #expect(cash.cashUSD == 60_000)
        #expect(cash.collaterals.map(\.name) == ["USDT"] && cash.collaterals[0].haircuts == Self.parameters.otherCollateral["USDT"])
    }

    /// Derive's option value of the mapped expiry is the engine's Black-76 value of the same OKX options.
    @Test func mappedOptionValueIsTheEnginesBlack76Value() throws {
        let account = try Self.account(
            #"{"simPos": [{"instId": "\#(Self.call)", "pos": "-100"}, {"instId": "\#(Self.put)", "pos": "70"}]}"#)
        let result = try DerivePM2Margin.compute(account.portfolios[0], parameters: Self.parameters)
        var expected = 0.0
        var legs: [(coins: Double, forward: Double)] = []
        for (id, size) in [(Self.call, -100.0), (Self.put, 70.0)] {
            let instrument = try Fixtures.catalog.instrument(id, path: "test")
            let option = try #require(try Self.market.market(for: instrument, path: "test").option)
            legs.append((size * instrument.coinsPerContract, option.forwardUSD))
            expected +=
                size * instrument.coinsPerContract
                * Black76.price(
                    try #require(instrument.id.optionKind), forward: option.forwardUSD, strike: try #require(instrument.id.strikeUSD),
                    volatility: option.volatility, timeToExpiryYears: option.timeToExpiryYears, discountFactor: option.discountFactor)
        }
        // Derive counts whole seconds to expiry and holds one forward per expiry (the mean of its options'):
        // each leg may differ by at most |coins| × |mean − its forward| (|delta| ≤ 1).
        let mean = legs.map(\.forward).reduce(0, +) / Double(legs.count)
        let tolerance = 1e-6 * Swift.abs(expected) + legs.map { Swift.abs($0.coins) * Swift.abs(mean - $0.forward) }.reduce(0, +)
        #expect(Swift.abs(result.optionValueUSD - expected) <= tolerance, "\(result.optionValueUSD) vs \(expected)")
    }

    @Test func balancesDeriveCannotHoldAreRefused() throws {
        #expect(throws: EngineError.self) { try Self.account(#"{"simAsset": [{"ccy": "BTC", "amt": "-1"}]}"#) }
        #expect(throws: EngineError.self) { try Self.account(#"{"simAsset": [{"ccy": "SOL", "amt": "10"}]}"#) }
        #expect(throws: EngineError.self) { try Self.account(#"{"acctLv": "3", "simPos": [{"instId": "BTC-USDC-SWAP", "pos": "1"}]}"#) }
        #expect(throws: EngineError.self) {
            try Self.account(#"{"paramsId": "okx-2025-01", "simPos": [{"instId": "BTC-USDC-SWAP", "pos": "1"}]}"#)
        }
        // Negative USDC is Derive cash borrowing, which it allows.
        let borrowed = try Self.account(#"{"simAsset": [{"ccy": "USDC", "amt": "-100"}]}"#)
        #expect(borrowed.portfolios.map(\.cashUSD) == [-100])
    }

    @Test func indexShockAgreesWithTheGraph() throws {
        let shocked = try Self.request(Self.bookWith(#""idxVol": "-0.1", "#))
        let build = try DerivePM2PositionBuilder.build(shocked, catalog: Fixtures.catalog, market: Self.market, parameters: Self.parameters)
        let graph = try DerivePM2PositionBuilder.graph(
            try Self.request(Self.book), catalog: Fixtures.catalog, market: Self.market, parameters: Self.parameters)
        let point = try #require(graph[member: "mmrData"]?.arrayItems.first { $0[member: "shockFactor"]?.scalarText == "-0.1" })
        #expect(
            isClose(try #require(build[member: "totalMmr"]?.doubleValue), try #require(point[member: "mmr"]?.doubleValue), relative: 1e-12))
        let unshocked = try DerivePM2PositionBuilder.build(
            try Self.request(Self.book), catalog: Fixtures.catalog, market: Self.market, parameters: Self.parameters)
        #expect(build[member: "totalMmrBf"] == unshocked[member: "totalMmr"])
        #expect(build[member: "model"]?.scalarText == "derive-pm2" && build[member: "paramsId"]?.scalarText == "derive-pm2")
    }

    @Test func requirementIsEquityMinusDerivesSurplus() throws {
        let response = try DerivePM2PositionBuilder.build(
            try Self.request(Self.book), catalog: Fixtures.catalog, market: Self.market, parameters: Self.parameters)
        let equity = try #require(response[member: "eq"]?.doubleValue)
        let mmr = try #require(response[member: "totalMmr"]?.doubleValue)
        let mm = try #require(response[member: "mm"]?.doubleValue)
        #expect(isClose(equity - mmr, mm, relative: 1e-12))
        let units = response[member: "riskUnitData"]?.arrayItems ?? []
        let sum = units.compactMap { $0[member: "mmr"]?.doubleValue }.reduce(0, +)
        #expect(isClose(sum, mmr, relative: 1e-14))
        #expect(try #require(response[member: "totalImr"]?.doubleValue) >= mmr)
    }

    @Test func comparisonColumnsAreEachModelsOwnFigures() throws {
        let request = try Self.request(Self.book)
        let report = try ModelComparison.compare(
            request, catalog: Fixtures.catalog, market: Self.market, models: [.okxPM(Fixtures.parameters), .derivePM2(Self.parameters)])
        let columns = report[member: "models"]?.arrayItems ?? []
        #expect(columns.compactMap { $0[member: "model"]?.scalarText } == ["okx-pm", "derive-pm2"])
        let okx = try PositionBuilder.build(request, catalog: Fixtures.catalog, market: Self.market, parameters: Fixtures.parameters)
        let derive = try DerivePM2PositionBuilder.build(
            request, catalog: Fixtures.catalog, market: Self.market, parameters: Self.parameters)
        #expect(columns.first?[member: "totalMmr"] == okx[member: "totalMmr"])
        #expect(columns.last?[member: "totalMmr"] == derive[member: "totalMmr"])
        let difference = try #require(report[member: "difference"]?.arrayItems.first?[member: "totalMmr"]?.doubleValue)
        let okxMmr = try #require(okx[member: "totalMmr"]?.doubleValue)
        let deriveMmr = try #require(derive[member: "totalMmr"]?.doubleValue)
        #expect(isClose(difference, deriveMmr - okxMmr, relative: 1e-12))
    }

    @Test func comparisonNamesTheModelThatRefuses() throws {
        let request = try Self.request(#"{"simPos": [{"instId": "BTC-USDT-SWAP", "pos": "1"}]}"#)
        #expect {
            try ModelComparison.compare(
                request, catalog: Fixtures.catalog, market: Self.market, models: [.okxPM(Fixtures.parameters), .derivePM2(Self.parameters)])
        } throws: { error in
            (error as? EngineError)?.description.hasPrefix("derive-pm2: simPos[0].instId") == true
        }
    }

    @Test func everyResponseNamesItsModelAfterParamsId() throws {
        let okx = try PositionBuilder.build(
            try Self.request(Self.book), catalog: Fixtures.catalog, market: Self.market, parameters: Fixtures.parameters
        )
        .withModel(.okxPM)
        guard case .object(let object) = okx, let index = object.keys.firstIndex(of: "paramsId") else {
            Issue.record("no paramsId")
            return
        }
        #expect(object.keys[index + 1] == "model" && object["model"] == .string("okx-pm"))
        #expect(object.keys.filter { $0 == "model" }.count == 1)
        #expect(JSONValue.object([("a", .number("1"))]).withModel(.derivePM2)[member: "model"]?.scalarText == "derive-pm2")
    }
}
