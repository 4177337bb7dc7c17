import MarginEngine
import MarginTestSupport
import Testing

/// Bad Position Builder requests (docs/methodology/05-position-builder.md): each is answered with an error naming the
/// field and the value, never with a partial result.
@Suite struct PositionBuilderRequestTests {
    static let positionLimit = 1000
    static let shippedParametersID = "okx-2025-01"
    static let expiredOption = "BTC-USD-260130-100000-C"  // expired 2026-01-30T08:00Z, before the sell-off snapshot
    static let expiredOptionExpiry = "2026-01-30T08:00:00.000Z"

    enum Market: Sendable {
        case calm, selloff
        var snapshot: MarketSnapshot {
            switch self {
            case .calm: Fixtures.calmMarket
            case .selloff: Fixtures.selloffMarket
            }
        }
    }

    /// Parses and builds a request against the shipped catalog and parameters.
    static func build(_ text: String, market: Market = .calm) throws(EngineError) -> JSONValue {
        let request = try PositionBuilderRequest(bytes: Array(text.utf8))
        return try PositionBuilder.build(request, catalog: Fixtures.catalog, market: market.snapshot, parameters: Fixtures.parameters)
    }

    static func positions(_ count: Int) -> String {
        let entry = #"{"instId": "BTC-USDT-SWAP", "pos": "1", "avgPx": "88000"}"#
        return #"{"simPos": ["# + Array(repeating: entry, count: count).joined(separator: ",") + "]}"
    }

    static func caseLabel(_ error: EngineError?) -> String? { error.flatMap { Mirror(reflecting: $0).children.first?.label } }

    struct BadRequest: Sendable, CustomTestStringConvertible {
        var name: String
        var text: String
        var market: Market = .calm
        /// The error's case label, e.g. `invalidField`.
        var errorCase: String
        /// The field path the message starts with.
        var path: String
        var mentions: [String]
        var testDescription: String { name }
    }

    static func simPos(_ entries: String...) -> String { #"{"simPos": ["# + entries.joined(separator: ", ") + "]}" }

    static let badRequests: [BadRequest] = [
        BadRequest(
            name: "unknown instrument", text: simPos(#"{"instId": "DOGE-USDT-SWAP", "pos": "1"}"#),
            errorCase: "unknownInstrument", path: "simPos[0].instId", mentions: [#""DOGE-USDT-SWAP""#]),
        BadRequest(
            name: "unknown instrument in the second position",
            text: simPos(#"{"instId": "BTC-USDT-SWAP", "pos": "1"}"#, #"{"instId": "BTC-USD-991231", "pos": "1"}"#),
            errorCase: "unknownInstrument", path: "simPos[1].instId", mentions: ["BTC-USD-991231"]),
        BadRequest(
            name: "expired instrument", text: simPos(#"{"instId": ""# + expiredOption + #"", "pos": "1", "avgPx": "0.01"}"#),
            market: .selloff, errorCase: "expiredInstrument", path: "simPos[0].instId", mentions: [expiredOption, expiredOptionExpiry]),
        BadRequest(
            name: "expired instrument without avgPx", text: simPos(#"{"instId": ""# + expiredOption + #"", "pos": "-2"}"#),
            market: .selloff, errorCase: "expiredInstrument", path: "simPos[0].instId", mentions: [expiredOption]),
        BadRequest(
            name: "non-numeric pos", text: simPos(#"{"instId": "BTC-USDT-SWAP", "pos": "abc"}"#),
            errorCase: "invalidField", path: "simPos[0].pos", mentions: [#""abc""#, "not a number"]),
        BadRequest(
            name: "non-finite pos", text: simPos(#"{"instId": "BTC-USDT-SWAP", "pos": "1e999"}"#),
            errorCase: "invalidField", path: "simPos[0].pos", mentions: ["1e999", "finite"]),
        BadRequest(
            name: "non-finite pos as a JSON number", text: simPos(#"{"instId": "BTC-USDT-SWAP", "pos": -1e999}"#),
            errorCase: "invalidField", path: "simPos[0].pos", mentions: ["-1e999"]),
        // Found by fuzz-position-builder: amt 1.21e308 BTC reached the output as an infinite USD value.
        BadRequest(
            name: "asset amount too large to value", text: #"{"simAsset": [{"ccy": "BTC", "amt": "1.21e308"}]}"#,
            errorCase: "invalidField", path: "simAsset[0].amt", mentions: ["1.21e308", "1000000000000000"]),
        BadRequest(
            name: "pos too large", text: simPos(#"{"instId": "BTC-USDT-SWAP", "pos": "-2e12"}"#),
            errorCase: "invalidField", path: "simPos[0].pos", mentions: ["-2e12"]),
        BadRequest(
            name: "avgPx too large", text: simPos(#"{"instId": "BTC-USDT-SWAP", "pos": "1", "avgPx": "8.8e76"}"#),
            errorCase: "invalidField", path: "simPos[0].avgPx", mentions: ["8.8e76", "at most"]),
        BadRequest(
            name: "NaN pos", text: simPos(#"{"instId": "BTC-USDT-SWAP", "pos": "NaN"}"#),
            errorCase: "invalidField", path: "simPos[0].pos", mentions: ["NaN"]),
        BadRequest(
            name: "zero pos", text: simPos(#"{"instId": "BTC-USDT-SWAP", "pos": "0"}"#),
            errorCase: "invalidField", path: "simPos[0].pos", mentions: [#""0""#, "zero"]),
        BadRequest(
            name: "negative zero pos", text: simPos(#"{"instId": "BTC-USDT-SWAP", "pos": -0.0}"#),
            errorCase: "invalidField", path: "simPos[0].pos", mentions: ["-0.0", "zero"]),
        BadRequest(
            name: "missing pos", text: simPos(#"{"instId": "BTC-USDT-SWAP", "pos": ""}"#),
            errorCase: "missingField", path: "simPos[0].pos", mentions: ["missing"]),
        BadRequest(
            name: "missing instId", text: simPos(#"{"pos": "1"}"#),
            errorCase: "missingField", path: "simPos[0].instId", mentions: []),
        // Found by fuzz-position-builder (fuzz/corpus/position-builder/regression-subnormal-pos.json): a subnormal
        // position had a subnormal MMR and an infinite margin ratio.
        BadRequest(
            name: "subnormal pos", text: simPos(#"{"instId": "ETH-USDT-SWAP", "pos": "-26525e-324"}"#),
            errorCase: "invalidField", path: "simPos[0].pos", mentions: ["-26525e-324", "1e-12"]),
        BadRequest(
            name: "zero avgPx", text: simPos(#"{"instId": "BTC-USDT-SWAP", "pos": "1", "avgPx": "0"}"#),
            errorCase: "invalidField", path: "simPos[0].avgPx", mentions: [#""0""#, "greater than 0"]),
        BadRequest(
            name: "negative avgPx", text: simPos(#"{"instId": "BTC-USDT-SWAP", "pos": "1", "avgPx": "-88000"}"#),
            errorCase: "invalidField", path: "simPos[0].avgPx", mentions: ["-88000"]),
        BadRequest(
            name: "non-numeric avgPx", text: simPos(#"{"instId": "BTC-USDT-SWAP", "pos": "1", "avgPx": "market"}"#),
            errorCase: "invalidField", path: "simPos[0].avgPx", mentions: ["market"]),
        BadRequest(
            name: "zero lever", text: simPos(#"{"instId": "BTC-USDT-SWAP", "pos": "1", "lever": "0"}"#),
            errorCase: "invalidField", path: "simPos[0].lever", mentions: ["0"]),
        BadRequest(
            name: "spot pair in simPos", text: simPos(#"{"instId": "BTC-USDT", "pos": "1"}"#),
            errorCase: "invalidField", path: "simPos[0].instId", mentions: [#""BTC-USDT""#, "spot", "simAsset"]),
        BadRequest(
            name: "unknown field in a position", text: simPos(#"{"instId": "BTC-USDT-SWAP", "pos": "1", "px": "1"}"#),
            errorCase: "invalidField", path: "simPos[0].px", mentions: ["not a known field"]),
        BadRequest(
            name: "simPos not an array", text: #"{"simPos": {"instId": "BTC-USDT-SWAP", "pos": "1"}}"#,
            errorCase: "invalidField", path: "simPos", mentions: ["array"]),
        BadRequest(
            name: "subnormal asset amount", text: #"{"simAsset": [{"ccy": "ETH", "amt": "5e-320"}]}"#,
            errorCase: "invalidField", path: "simAsset[0].amt", mentions: ["5e-320", "1e-18"]),
        BadRequest(
            name: "duplicate simAsset currency", text: #"{"simAsset": [{"ccy": "USDT", "amt": "1"}, {"ccy": "USDT", "amt": "2"}]}"#,
            errorCase: "invalidField", path: "simAsset[1].ccy", mentions: [#""USDT""#, "twice"]),
        BadRequest(
            name: "simAsset currency without an index", text: #"{"simAsset": [{"ccy": "USDT", "amt": "1"}, {"ccy": "XRP", "amt": "100"}]}"#,
            errorCase: "invalidField", path: "simAsset[1].ccy", mentions: [#""XRP""#, "index"]),
        BadRequest(
            name: "non-numeric simAsset amount", text: #"{"simAsset": [{"ccy": "USDT", "amt": "lots"}]}"#,
            errorCase: "invalidField", path: "simAsset[0].amt", mentions: ["lots"]),
        BadRequest(
            name: "negative spotInUse", text: #"{"spotInUse": [{"ccy": "BTC", "amt": "-1"}]}"#,
            errorCase: "invalidField", path: "spotInUse[0].amt", mentions: ["-1"]),
        BadRequest(
            name: "unknown field simPosition", text: #"{"simPosition": [{"instId": "BTC-USDT-SWAP", "pos": "1"}]}"#,
            errorCase: "invalidField", path: "simPosition", mentions: ["not a known field"]),
        BadRequest(
            name: "idxVol above 1", text: #"{"idxVol": "1.5"}"#,
            errorCase: "invalidField", path: "idxVol", mentions: ["1.5", "-0.99", "1"]),
        BadRequest(
            name: "idxVol of -1", text: #"{"idxVol": -1}"#,
            errorCase: "invalidField", path: "idxVol", mentions: ["-1"]),
        BadRequest(
            name: "idxVol just below -0.99", text: #"{"idxVol": "-0.995"}"#,
            errorCase: "invalidField", path: "idxVol", mentions: ["-0.995"]),
        BadRequest(
            name: "idxVol NaN", text: #"{"idxVol": "NaN"}"#,
            errorCase: "invalidField", path: "idxVol", mentions: ["NaN"]),
        BadRequest(
            name: "greeksType XYZ", text: #"{"greeksType": "XYZ"}"#,
            errorCase: "invalidField", path: "greeksType", mentions: [#""XYZ""#, "BS", "PA", "CASH"]),
        BadRequest(
            name: "greeksType in lower case", text: #"{"greeksType": "bs"}"#,
            errorCase: "invalidField", path: "greeksType", mentions: [#""bs""#]),
        BadRequest(
            name: "lever below 1 (classic)", text: #"{"acctLv": "3", "lever": "0.5"}"#,
            errorCase: "invalidField", path: "lever", mentions: ["0.5"]),
        BadRequest(
            name: "acctLv 2", text: #"{"acctLv": "2"}"#,
            errorCase: "invalidField", path: "acctLv", mentions: [#""2""#]),
        BadRequest(
            name: "real positions offline", text: #"{"inclRealPosAndEq": true}"#,
            errorCase: "unsupported", path: "inclRealPosAndEq", mentions: ["true"]),
        BadRequest(
            name: "inclRealPosAndEq not a boolean", text: #"{"inclRealPosAndEq": "yes"}"#,
            errorCase: "invalidField", path: "inclRealPosAndEq", mentions: [#""yes""#]),
        BadRequest(
            name: "another parameter set", text: #"{"paramsId": "okx-2024-01"}"#,
            errorCase: "invalidField", path: "paramsId", mentions: ["okx-2024-01", shippedParametersID]),
        BadRequest(
            name: "request is an array", text: "[]",
            errorCase: "invalidField", path: "request", mentions: ["object"]),
        BadRequest(
            name: "request is a string", text: #""simPos""#,
            errorCase: "invalidField", path: "request", mentions: [#""simPos""#, "object"]),
        BadRequest(
            name: "malformed JSON", text: #"{"simPos": [}"#,
            errorCase: "malformedDocument", path: "request", mentions: ["invalid JSON"]),
        BadRequest(
            name: "duplicate key", text: #"{"idxVol": "0.1", "idxVol": "0.2"}"#,
            errorCase: "malformedDocument", path: "request", mentions: ["duplicate key"]),
        BadRequest(
            name: "empty body", text: "",
            errorCase: "malformedDocument", path: "request", mentions: []),
    ]

    @Test(arguments: badRequests)
    func badRequestIsRejectedNamingTheField(_ testCase: BadRequest) {
        let error = #expect(throws: EngineError.self) { try Self.build(testCase.text, market: testCase.market) }
        guard let error else { return }
        #expect(Self.caseLabel(error) == testCase.errorCase, "\(error)")
        #expect(error.description.hasPrefix(testCase.path + ":") || error.description.hasPrefix(testCase.path + " "), "\(error)")
        for fragment in testCase.mentions {
            #expect(error.description.contains(fragment), "\(error) should mention \(fragment)")
        }
    }

    @Test func expiredInstrumentCarriesBothTimes() {
        let text = Self.simPos(#"{"instId": ""# + Self.expiredOption + #"", "pos": "1"}"#)
        let error = #expect(throws: EngineError.self) { try Self.build(text, market: .selloff) }
        let expiry = InstrumentID(Self.expiredOption)?.expiry
        #expect(expiry != nil)
        if let expiry {
            #expect(
                error
                    == .expiredInstrument(
                        path: "simPos[0].instId", instrumentID: Self.expiredOption, expiry: expiry,
                        marketTime: Fixtures.selloffMarket.valuationTime))
        }
    }

    @Test func moreThanOneThousandPositionsAreRejected() {
        let error = #expect(throws: EngineError.self) { try Self.build(Self.positions(Self.positionLimit + 1)) }
        #expect(error == .tooManyPositions(path: "simPos", count: Self.positionLimit + 1, limit: Self.positionLimit))
        #expect(error?.description == "simPos: 1001 positions, more than the limit of 1000")
    }

    @Test func exactlyOneThousandPositionsAreAccepted() throws {
        let request = try PositionBuilderRequest(bytes: Array(Self.positions(Self.positionLimit).utf8))
        let portfolio = try PositionBuilder.portfolio(
            for: request, catalog: Fixtures.catalog, market: Fixtures.calmMarket, parameters: Fixtures.parameters)
        #expect(portfolio.positions.count == Self.positionLimit)
        #expect(portfolio.positions.last?.source == "simPos[999]")
    }

    // MARK: - Numbers as JSON numbers

    static let stringRequest = #"""
        {"acctLv": "4", "greeksType": "PA", "idxVol": "0.05", "paramsId": "okx-2025-01",
         "simPos": [{"instId": "BTC-USDT-SWAP", "pos": "-10", "avgPx": "90000", "lever": "10"},
                    {"instId": "BTC-USD-260327-90000-C", "pos": "5", "avgPx": "0.08"},
                    {"instId": "ETH-USD-SWAP", "pos": "20"}],
         "simAsset": [{"ccy": "USDT", "amt": "100000"}, {"ccy": "BTC", "amt": "1.5"}, {"ccy": "ETH", "amt": "-3"}],
         "spotInUse": [{"ccy": "BTC", "amt": "0.5"}]}
        """#
    static let numberRequest = #"""
        {"acctLv": 4, "greeksType": "PA", "idxVol": 0.05, "paramsId": "okx-2025-01",
         "simPos": [{"instId": "BTC-USDT-SWAP", "pos": -10, "avgPx": 90000, "lever": 10},
                    {"instId": "BTC-USD-260327-90000-C", "pos": 5, "avgPx": 0.08},
                    {"instId": "ETH-USD-SWAP", "pos": 20}],
         "simAsset": [{"ccy": "USDT", "amt": 100000}, {"ccy": "BTC", "amt": 1.5}, {"ccy": "ETH", "amt": -3}],
         "spotInUse": [{"ccy": "BTC", "amt": 0.5}]}
        """#

    @Test func numbersAsJSONNumbersGiveTheSameResponse() throws {
        let fromStrings = try Self.build(Self.stringRequest)
        let fromNumbers = try Self.build(Self.numberRequest)
        #expect(fromStrings == fromNumbers)
        #expect(fromStrings[member: "paramsId"]?.scalarText == Self.shippedParametersID)
        #expect(fromStrings[member: "greeksType"]?.scalarText == "PA")
        #expect((fromStrings[member: "totalMmr"]?.doubleValue ?? 0) > 0)
        #expect((fromStrings[member: "totalMmrBf"]?.doubleValue ?? 0) > 0)
        let units = fromStrings[member: "riskUnitData"]?.arrayItems.compactMap { $0[member: "riskUnit"]?.scalarText } ?? []
        #expect(Set(units) == ["BTC", "ETH"])
    }

    @Test func parsedRequestHoldsTheGivenValues() throws {
        let request = try PositionBuilderRequest(bytes: Array(Self.numberRequest.utf8))
        #expect(request.accountLevel == "4")
        #expect(request.greeksType == .priceAdjusted)
        #expect(request.indexShock == 0.05)
        #expect(request.parametersID == Self.shippedParametersID)
        #expect(request.positions.map(\.instrumentID) == ["BTC-USDT-SWAP", "BTC-USD-260327-90000-C", "ETH-USD-SWAP"])
        #expect(request.positions.map(\.sizeContracts) == [-10, 5, 20])
        #expect(request.positions.map(\.averagePrice) == [90000, 0.08, nil])
        #expect(request.positions.map(\.path) == ["simPos[0]", "simPos[1]", "simPos[2]"])
        #expect(request.assets.map(\.amount) == [100_000, 1.5, -3])
        #expect(request.spotInUse == ["BTC": 0.5])
    }

    @Test func emptyRequestUsesTheDefaults() throws {
        let request = try PositionBuilderRequest(bytes: Array("{}".utf8))
        #expect(request.accountLevel == "4")
        #expect(!request.includeRealPositions)
        #expect(request.positions.isEmpty)
        #expect(request.greeksType == .blackScholes)
        #expect(request.indexShock == nil)
    }
}
