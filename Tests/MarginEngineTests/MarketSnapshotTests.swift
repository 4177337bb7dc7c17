import MarginEngine
import MarginTestSupport
import Testing

/// The market snapshot (docs/methodology/01-instruments-market.md §1.2): parsing, validation, crosses, option inputs
/// and the index shock.
@Suite struct MarketSnapshotTests {
    static let ts: Int64 = 1_767_115_875_944  // 2025-12-30T17:31:15.944Z, the calm snapshot's time
    static let tsText = "\"\(ts)\""
    static let btcUSD = 88524.21
    static let usdtUSD = 0.99975
    static let usdcUSD = 0.9999
    static let swapMark = 88561.1
    static let inverseFutureMark = 89559.35
    static let linearFutureMark = 89600.5
    static let callID = "BTC-USD-260327-90000-C"
    static let putID = "BTC-USD-260327-70000-P"
    static let optionRelativeTolerance = 1e-10
    static let shockMove = 0.1
    static let defaultIndices = #"{"BTC-USD": "88524.21", "USDT-USD": "0.99975"}"#
    static let defaultMarks = #"[{"instId": "BTC-USDT-SWAP", "markPx": "88561.1"}]"#

    /// A snapshot document; a nil member is left out.
    static func document(
        ts: String? = tsText, indices: String? = defaultIndices, marks: String? = defaultMarks, extra: [String] = []
    ) -> String {
        var members: [String] = []
        if let ts { members.append(#""ts": "# + ts) }
        if let indices { members.append(#""indices": "# + indices) }
        if let marks { members.append(#""marks": "# + marks) }
        return "{" + (members + extra).joined(separator: ", ") + "}"
    }

    static func snapshot(_ text: String) throws(EngineError) -> MarketSnapshot { try MarketSnapshot(bytes: Array(text.utf8)) }

    static func instrument(_ id: String) throws -> Instrument { try Fixtures.catalog.instrument(id, path: "test") }

    static func caseLabel(_ error: EngineError?) -> String? { error.flatMap { Mirror(reflecting: $0).children.first?.label } }

    // MARK: - Valid snapshots

    @Test func minimalSnapshotParses() throws {
        let market = try Self.snapshot(Self.document())
        #expect(market.valuationTime == UnixMillis(Self.ts))
        #expect(market.indices == ["BTC-USD": Self.btcUSD, "USDT-USD": Self.usdtUSD])
        #expect(market.usdRate == 0)
        #expect(market.marks == ["BTC-USDT-SWAP": MarkQuote(markPrice: Self.swapMark)])
        #expect(market.source == "")
        #expect(market.representative.isEmpty)
    }

    @Test func numbersMayBeJSONNumbers() throws {
        let text = Self.document(
            ts: String(Self.ts), indices: #"{"BTC-USD": 88524.21, "USDT-USD": 0.99975}"#,
            marks: #"[{"instId": "BTC-USDT-SWAP", "markPx": 88561.1}]"#, extra: [#""rates": {"USD": 0.01}"#])
        let market = try Self.snapshot(text)
        #expect(market.valuationTime == UnixMillis(Self.ts))
        #expect(market.indices["BTC-USD"] == Self.btcUSD)
        #expect(market.marks["BTC-USDT-SWAP"]?.markPrice == Self.swapMark)
        #expect(market.usdRate == 0.01)
    }

    @Test func optionalMembersAreRead() throws {
        let text = Self.document(extra: [
            #""rates": {"USD": "0.03"}"#, #""source": "test data""#, #""representative": ["USDT-USD"]"#,
        ])
        let market = try Self.snapshot(text)
        #expect(market.usdRate == 0.03)
        #expect(market.source == "test data")
        #expect(market.representative == ["USDT-USD"])
    }

    @Test func linearCrossIsDerivedFromTheUSDIndex() throws {
        let market = try Self.snapshot(Self.document())
        #expect(isClose(try market.index(base: "BTC", quote: "USDT"), Self.btcUSD / Self.usdtUSD))
        #expect(try market.indexUSD("USD") == 1)
        #expect(try market.index(base: "BTC", quote: "USD") == Self.btcUSD)
    }

    @Test func usdIndexIsDerivedFromAStablecoinCross() throws {
        let market = try Self.snapshot(Self.document(indices: #"{"BTC-USDT": "88546.35", "USDT-USD": "0.99975"}"#))
        #expect(isClose(try market.indexUSD("BTC"), 88546.35 * Self.usdtUSD))
        #expect(isClose(try market.index(base: "BTC", quote: "USD"), 88546.35 * Self.usdtUSD))
        #expect(try market.index(base: "BTC", quote: "USDT") == 88546.35)
    }

    @Test func usdcCrossIsUsedWhenThereIsNoUSDTCross() throws {
        let market = try Self.snapshot(Self.document(indices: #"{"ETH-USDC": "2979", "USDC-USD": "0.9999"}"#, marks: "[]"))
        #expect(isClose(try market.indexUSD("ETH"), 2979 * Self.usdcUSD))
    }

    @Test func givenIndexWinsOverTheCross() throws {
        let market = try Self.snapshot(
            Self.document(indices: #"{"BTC-USD": "88524.21", "BTC-USDT": "88000", "USDT-USD": "0.99975"}"#))
        #expect(try market.index(base: "BTC", quote: "USDT") == 88000)
        #expect(try market.indexUSD("BTC") == Self.btcUSD)
    }

    @Test func expiryOneMillisecondAfterTheSnapshotIsLive() throws {
        let expiry = UnixMillis.utc(year: 2025, month: 12, day: 30, hour: 8).rawValue
        let marks = #"[{"instId": "BTC-USD-251230", "markPx": "88530"}]"#
        #expect(throws: Never.self) { try Self.snapshot(Self.document(ts: "\"\(expiry - 1)\"", marks: marks)) }
        let error = #expect(throws: EngineError.self) { try Self.snapshot(Self.document(ts: "\"\(expiry)\"", marks: marks)) }
        #expect(Self.caseLabel(error) == "expiredInstrument")
    }

    // MARK: - Rejected snapshots

    struct BadSnapshot: Sendable, CustomTestStringConvertible {
        var name: String
        var text: String
        var errorCase: String
        /// The field path the message starts with.
        var path: String
        var mentions: [String]
        var testDescription: String { name }
    }

    static let badSnapshots: [BadSnapshot] = [
        BadSnapshot(name: "missing ts", text: document(ts: nil), errorCase: "missingField", path: "market.ts", mentions: []),
        BadSnapshot(name: "empty ts", text: document(ts: #""""#), errorCase: "missingField", path: "market.ts", mentions: []),
        BadSnapshot(
            name: "ts not a number", text: document(ts: #""abc""#), errorCase: "invalidField", path: "market.ts", mentions: ["abc"]),
        BadSnapshot(
            name: "ts with a fraction", text: document(ts: #""1767115875944.5""#), errorCase: "invalidField",
            path: "market.ts", mentions: ["1767115875944.5"]),
        BadSnapshot(name: "negative ts", text: document(ts: #""-5""#), errorCase: "invalidField", path: "market.ts", mentions: ["-5"]),
        BadSnapshot(name: "missing indices", text: document(indices: nil), errorCase: "missingField", path: "market.indices", mentions: []),
        BadSnapshot(
            name: "negative index price", text: document(indices: #"{"BTC-USD": "-1", "USDT-USD": "0.99975"}"#),
            errorCase: "invalidField", path: "market.indices.BTC-USD", mentions: ["-1", "greater than 0"]),
        BadSnapshot(
            name: "zero index price", text: document(indices: #"{"BTC-USD": "0", "USDT-USD": "0.99975"}"#),
            errorCase: "invalidField", path: "market.indices.BTC-USD", mentions: [#""0""#]),
        BadSnapshot(
            name: "negative index as a JSON number", text: document(indices: #"{"BTC-USD": 88524.21, "USDT-USD": -0.5}"#),
            errorCase: "invalidField", path: "market.indices.USDT-USD", mentions: ["-0.5"]),
        BadSnapshot(
            name: "NaN index", text: document(indices: #"{"BTC-USD": "NaN", "USDT-USD": "0.99975"}"#),
            errorCase: "invalidField", path: "market.indices.BTC-USD", mentions: ["NaN"]),
        BadSnapshot(
            name: "non-finite index", text: document(indices: #"{"BTC-USD": "1e999", "USDT-USD": "0.99975"}"#),
            errorCase: "invalidField", path: "market.indices.BTC-USD", mentions: ["1e999", "finite"]),
        BadSnapshot(
            name: "index pair without a quote", text: document(indices: #"{"BTCUSD": "88524.21"}"#, marks: "[]"),
            errorCase: "invalidField", path: "market.indices", mentions: ["BTCUSD"]),
        BadSnapshot(
            name: "mark for a malformed instId", text: document(marks: #"[{"instId": "BTC-XYZ-SWAP", "markPx": "1"}]"#),
            errorCase: "unknownInstrument", path: "market.marks[0].instId", mentions: ["BTC-XYZ-SWAP"]),
        BadSnapshot(
            name: "mark for a spot pair", text: document(marks: #"[{"instId": "BTC-USDT", "markPx": "88561.1"}]"#),
            errorCase: "unknownInstrument", path: "market.marks[0].instId", mentions: ["BTC-USDT"]),
        BadSnapshot(
            name: "mark for an expired future",
            text: document(marks: #"[{"instId": "BTC-USDT-SWAP", "markPx": "88561.1"}, {"instId": "BTC-USD-251230", "markPx": "88530"}]"#),
            errorCase: "expiredInstrument", path: "market.marks[1].instId", mentions: ["BTC-USD-251230", "2025-12-30T08:00:00.000Z"]),
        BadSnapshot(
            name: "mark for an expired option",
            text: document(marks: #"[{"instId": "BTC-USD-251226-90000-C", "markVol": "0.5"}]"#),
            errorCase: "expiredInstrument", path: "market.marks[0].instId",
            mentions: ["BTC-USD-251226-90000-C", "2025-12-26T08:00:00.000Z"]),
        BadSnapshot(
            name: "duplicate mark",
            text: document(marks: #"[{"instId": "BTC-USDT-SWAP", "markPx": "88561.1"}, {"instId": "BTC-USDT-SWAP", "markPx": "88562"}]"#),
            errorCase: "invalidField", path: "market.marks[1].instId", mentions: ["BTC-USDT-SWAP", "twice"]),
        BadSnapshot(
            name: "option with neither markPx nor markVol",
            text: document(marks: #"[{"instId": "BTC-USD-260327-90000-C", "fwdPx": "89559.35"}]"#),
            errorCase: "missingField", path: "market.marks[0].markVol", mentions: []),
        BadSnapshot(
            name: "swap without markPx", text: document(marks: #"[{"instId": "BTC-USDT-SWAP"}]"#),
            errorCase: "missingField", path: "market.marks[0].markPx", mentions: []),
        BadSnapshot(
            name: "future with a volatility but no markPx", text: document(marks: #"[{"instId": "BTC-USD-260327", "markVol": "0.5"}]"#),
            errorCase: "missingField", path: "market.marks[0].markPx", mentions: []),
        BadSnapshot(
            name: "markVol above 10", text: document(marks: #"[{"instId": "BTC-USD-260327-90000-C", "markVol": "10.5"}]"#),
            errorCase: "invalidField", path: "market.marks[0].markVol", mentions: ["10.5", "10"]),
        BadSnapshot(
            name: "markVol zero", text: document(marks: #"[{"instId": "BTC-USD-260327-90000-C", "markVol": "0"}]"#),
            errorCase: "invalidField", path: "market.marks[0].markVol", mentions: [#""0""#]),
        BadSnapshot(
            name: "markPx zero", text: document(marks: #"[{"instId": "BTC-USDT-SWAP", "markPx": "0"}]"#),
            errorCase: "invalidField", path: "market.marks[0].markPx", mentions: [#""0""#]),
        BadSnapshot(
            name: "markPx NaN", text: document(marks: #"[{"instId": "BTC-USDT-SWAP", "markPx": "NaN"}]"#),
            errorCase: "invalidField", path: "market.marks[0].markPx", mentions: ["NaN"]),
        // Found by fuzz-position-builder (fuzz/corpus/position-builder/regression-subnormal-mark.json): a subnormal
        // mark made a coin-margined position worth infinitely many coins, and NaN reached the output.
        BadSnapshot(
            name: "subnormal markPx", text: document(marks: #"[{"instId": "BTC-USDT-SWAP", "markPx": "770620.15e-324"}]"#),
            errorCase: "invalidField", path: "market.marks[BTC-USDT-SWAP].markPx",
            mentions: ["between 0.000000000000001 and 1000000000000000"]),
        BadSnapshot(
            name: "index below the price range", text: document(indices: #"{"BTC-USD": "9e-16", "USDT-USD": "0.99975"}"#),
            errorCase: "invalidField", path: "market.indices.BTC-USD", mentions: ["between"]),
        BadSnapshot(
            name: "fwdPx above the price range",
            text: document(marks: #"[{"instId": "BTC-USD-260327-90000-C", "markVol": "0.5", "fwdPx": "2e15"}]"#),
            errorCase: "invalidField", path: "market.marks[BTC-USD-260327-90000-C].fwdPx", mentions: ["between"]),
        BadSnapshot(
            name: "negative fwdPx", text: document(marks: #"[{"instId": "BTC-USD-260327-90000-C", "markVol": "0.5", "fwdPx": "-1"}]"#),
            errorCase: "invalidField", path: "market.marks[0].fwdPx", mentions: ["-1"]),
        BadSnapshot(
            name: "unknown key in a mark", text: document(marks: #"[{"instId": "BTC-USDT-SWAP", "markPrice": "88561.1"}]"#),
            errorCase: "invalidField", path: "market.marks[0].markPrice", mentions: ["not a known field"]),
        BadSnapshot(
            name: "marks not an array", text: document(marks: #"{"BTC-USDT-SWAP": "88561.1"}"#),
            errorCase: "invalidField", path: "market.marks", mentions: ["array"]),
        BadSnapshot(
            name: "unknown top-level key", text: document(extra: [#""timestamp": "1""#]),
            errorCase: "invalidField", path: "market.timestamp", mentions: ["not a known field"]),
        BadSnapshot(
            name: "USD rate out of range", text: document(extra: [#""rates": {"USD": "1.5"}"#]),
            errorCase: "invalidField", path: "market.rates.USD", mentions: ["1.5"]),
        BadSnapshot(
            name: "rate of another currency", text: document(extra: [#""rates": {"EUR": "0.02"}"#]),
            errorCase: "invalidField", path: "market.rates.EUR", mentions: []),
        BadSnapshot(name: "document not an object", text: "[]", errorCase: "invalidField", path: "market", mentions: ["object"]),
    ]

    @Test(arguments: badSnapshots)
    func invalidSnapshotIsRejected(_ testCase: BadSnapshot) {
        let error = #expect(throws: EngineError.self) { try Self.snapshot(testCase.text) }
        guard let error else { return }
        #expect(Self.caseLabel(error) == testCase.errorCase, "\(error)")
        #expect(error.description.hasPrefix(testCase.path + ":") || error.description.hasPrefix(testCase.path + " "), "\(error)")
        for fragment in testCase.mentions {
            #expect(error.description.contains(fragment), "\(error) should mention \(fragment)")
        }
    }

    @Test(arguments: [#"{"ts": "#, "", "{\"ts\": NaN}", #"{"ts": "1", "ts": "2"}"#])
    func malformedJSONIsAMalformedDocument(_ text: String) {
        let error = #expect(throws: EngineError.self) { try Self.snapshot(text) }
        guard case .malformedDocument(let document, let detail) = error else {
            Issue.record("expected malformedDocument, got \(String(describing: error))")
            return
        }
        #expect(document == "market")
        #expect(detail.hasPrefix("invalid JSON at byte"))
        #expect(error?.description.hasPrefix("market: invalid JSON") == true)
    }

    @Test func snapshotBuiltInCodeIsValidatedToo() {
        let time = UnixMillis(Self.ts)
        let nanMark = #expect(throws: EngineError.self) {
            try MarketSnapshot(valuationTime: time, indices: ["BTC-USD": Self.btcUSD], marks: ["BTC-USDT-SWAP": MarkQuote(markPrice: .nan)])
        }
        #expect(nanMark?.description.hasPrefix("market.marks[BTC-USDT-SWAP].markPx") == true)
        let infiniteIndex = #expect(throws: EngineError.self) {
            try MarketSnapshot(valuationTime: time, indices: ["BTC-USD": .infinity], marks: [:])
        }
        #expect(infiniteIndex?.description.hasPrefix("market.indices.BTC-USD") == true)
        let rate = #expect(throws: EngineError.self) {
            try MarketSnapshot(valuationTime: time, indices: ["BTC-USD": Self.btcUSD], usdRate: 1, marks: [:])
        }
        #expect(rate?.description.hasPrefix("market.rates.USD") == true)
        let zeroTime = #expect(throws: EngineError.self) { try MarketSnapshot(valuationTime: UnixMillis(0), indices: [:], marks: [:]) }
        #expect(zeroTime?.description.hasPrefix("market.ts") == true)
        let vol = #expect(throws: EngineError.self) {
            try MarketSnapshot(valuationTime: time, indices: ["BTC-USD": Self.btcUSD], marks: [Self.callID: MarkQuote(markVolatility: 11)])
        }
        #expect(vol?.description.hasPrefix("market.marks[\(Self.callID)].markVol: 11") == true)
        let neither = #expect(throws: EngineError.self) {
            try MarketSnapshot(valuationTime: time, indices: ["BTC-USD": Self.btcUSD], marks: [Self.callID: MarkQuote(forwardUSD: 90000)])
        }
        #expect(neither == .missingMarketData(name: Self.callID, detail: "neither markPx nor markVol"))
    }

    // MARK: - Instrument markets

    struct ImpliedCase: Sendable, CustomTestStringConvertible {
        var id: String
        var kind: OptionKind
        var strike: Double
        var markPx: String
        var rate: String
        var testDescription: String { "\(id) at \(markPx), r = \(rate)" }
    }

    @Test(arguments: [
        ImpliedCase(id: callID, kind: .call, strike: 90000, markPx: "0.07823415", rate: "0"),
        ImpliedCase(id: callID, kind: .call, strike: 90000, markPx: "0.07823415", rate: "0.04"),
        ImpliedCase(id: putID, kind: .put, strike: 70000, markPx: "0.0121", rate: "0"),
        ImpliedCase(id: "BTC-USD-260327-120000-C", kind: .call, strike: 120000, markPx: "0.0059", rate: "-0.01"),
    ])
    func volatilityImpliedFromMarkPxReproducesTheMark(_ testCase: ImpliedCase) throws {
        let text = Self.document(
            marks: #"[{"instId": ""# + testCase.id + #"", "markPx": ""# + testCase.markPx + #"", "fwdPx": "89559.35"}]"#,
            extra: [#""rates": {"USD": ""# + testCase.rate + #""}"#])
        let market = try Self.snapshot(text).market(for: try Self.instrument(testCase.id), path: "simPos[0]")
        let option = try #require(market.option)
        let markPx = try #require(Double(testCase.markPx))
        #expect(market.markPrice == markPx)
        #expect(market.indexUSD == Self.btcUSD)
        #expect(option.forwardUSD == Self.inverseFutureMark)
        #expect(option.volatility > ImpliedVolatility.minimumVolatility && option.volatility < ImpliedVolatility.maximumVolatility)
        let priceUSD = Black76.price(
            testCase.kind, forward: option.forwardUSD, strike: testCase.strike, volatility: option.volatility,
            timeToExpiryYears: option.timeToExpiryYears, discountFactor: option.discountFactor)
        #expect(isClose(priceUSD, markPx * Self.btcUSD, relative: Self.optionRelativeTolerance), "\(priceUSD) vs \(markPx * Self.btcUSD)")
    }

    @Test func markPxIsComputedFromMarkVol() throws {
        let volatility = 0.4148
        let text = Self.document(marks: #"[{"instId": ""# + Self.callID + #"", "markVol": "0.4148", "fwdPx": "89559.35"}]"#)
        let market = try Self.snapshot(text).market(for: try Self.instrument(Self.callID), path: "simPos[0]")
        let option = try #require(market.option)
        #expect(option.volatility == volatility)
        let years = UnixMillis(Self.ts).years(until: try #require(InstrumentID(Self.callID)?.expiry))
        #expect(isClose(option.timeToExpiryYears, years))
        let expected =
            Black76.price(.call, forward: Self.inverseFutureMark, strike: 90000, volatility: volatility, timeToExpiryYears: years)
            / Self.btcUSD
        #expect(isClose(market.markPrice, expected))
    }

    @Test func markPxOutsideTheNoArbitrageBoundsIsBadMarketData() throws {
        let text = Self.document(marks: #"[{"instId": ""# + Self.callID + #"", "markPx": "2"}]"#)
        let error = #expect(throws: EngineError.self) {
            try Self.snapshot(text).market(for: try Self.instrument(Self.callID), path: "simPos[0]")
        }
        #expect(Self.caseLabel(error) == "badMarketData")
        #expect(error?.description.contains(Self.callID) == true)
        #expect(error?.description.contains("markPx 2") == true)
    }

    struct ForwardCase: Sendable, CustomTestStringConvertible {
        var name: String
        var indices: String
        var marks: String
        var expected: Double
        var testDescription: String { name }
    }

    static let optionMark = #"{"instId": "BTC-USD-260327-90000-C", "markVol": "0.5""#

    @Test(arguments: [
        ForwardCase(
            name: "fwdPx wins", indices: defaultIndices,
            marks: "[" + optionMark + #", "fwdPx": "90000"}, {"instId": "BTC-USD-260327", "markPx": "89559.35"}]"#, expected: 90000),
        ForwardCase(
            name: "same-expiry inverse future", indices: defaultIndices,
            marks: "[" + optionMark
                + #"}, {"instId": "BTC-USD-260327", "markPx": "89559.35"}, {"instId": "BTC-USDT-260327", "markPx": "89600.5"}]"#,
            expected: inverseFutureMark),
        ForwardCase(
            name: "same-expiry USDT future in USD", indices: defaultIndices,
            marks: "[" + optionMark + #"}, {"instId": "BTC-USDT-260327", "markPx": "89600.5"}]"#, expected: linearFutureMark * usdtUSD),
        ForwardCase(
            name: "same-expiry USDC future in USD", indices: #"{"BTC-USD": "88524.21", "USDC-USD": "0.9999"}"#,
            marks: "[" + optionMark + #"}, {"instId": "BTC-USDC-260327", "markPx": "89600.5"}]"#, expected: linearFutureMark * usdcUSD),
        ForwardCase(
            name: "index when no future of the expiry", indices: defaultIndices,
            marks: "[" + optionMark
                + #"}, {"instId": "BTC-USD-260626", "markPx": "90500"}, {"instId": "BTC-USD-SWAP", "markPx": "88539"}]"#,
            expected: btcUSD),
    ])
    func optionForwardFallsBack(_ testCase: ForwardCase) throws {
        let market = try Self.snapshot(Self.document(indices: testCase.indices, marks: testCase.marks))
        let resolved = try market.market(for: try Self.instrument(Self.callID), path: "simPos[0]")
        let forward = try #require(resolved.option?.forwardUSD)
        #expect(isClose(forward, testCase.expected), "\(forward) vs \(testCase.expected)")
    }

    @Test func linearAndInverseMarketsUseTheirQuoteIndex() throws {
        let marks = #"[{"instId": "BTC-USDT-SWAP", "markPx": "88561.1"}, {"instId": "BTC-USD-SWAP", "markPx": "88539"}]"#
        let market = try Self.snapshot(Self.document(marks: marks))
        let linear = try market.market(for: try Self.instrument("BTC-USDT-SWAP"), path: "simPos[0]")
        #expect(linear.markPrice == Self.swapMark)
        #expect(isClose(linear.quoteIndex, Self.btcUSD / Self.usdtUSD))
        #expect(linear.quoteUSD == Self.usdtUSD)
        #expect(linear.timeToExpiryYears == 0)
        #expect(linear.option == nil)
        let inverse = try market.market(for: try Self.instrument("BTC-USD-SWAP"), path: "simPos[1]")
        #expect(inverse.quoteIndex == Self.btcUSD)
        #expect(inverse.quoteUSD == 1)
    }

    @Test func missingCoinIndexNamesThePair() throws {
        let market = try Self.snapshot(Self.document(indices: #"{"USDT-USD": "0.99975"}"#))
        let error = #expect(throws: EngineError.self) { try market.market(for: try Self.instrument("BTC-USDT-SWAP"), path: "simPos[0]") }
        #expect(error == .missingMarketData(name: "BTC-USD", detail: "no index price"))
        #expect(error?.description == "market: no index price for BTC-USD")
    }

    @Test func missingStablecoinIndexNamesTheCross() throws {
        let market = try Self.snapshot(Self.document(indices: #"{"BTC-USD": "88524.21"}"#))
        let error = #expect(throws: EngineError.self) { try market.market(for: try Self.instrument("BTC-USDT-SWAP"), path: "simPos[0]") }
        #expect(error == .missingMarketData(name: "BTC-USDT", detail: "no index price"))
    }

    @Test func missingMarkNamesTheInstrument() throws {
        let market = try Self.snapshot(Self.document())
        let swap = #expect(throws: EngineError.self) { try market.market(for: try Self.instrument("BTC-USD-SWAP"), path: "simPos[0]") }
        #expect(swap == .missingMarketData(name: "BTC-USD-SWAP", detail: "no mark price"))
        let option = #expect(throws: EngineError.self) { try market.market(for: try Self.instrument(Self.callID), path: "simPos[0]") }
        #expect(Self.caseLabel(option) == "missingMarketData")
        #expect(option?.description.contains(Self.callID) == true)
    }

    @Test func expiredInstrumentIsRejectedWithTheRequestPath() throws {
        let error = #expect(throws: EngineError.self) {
            try Fixtures.selloffMarket.market(for: try Self.instrument("BTC-USD-260130-100000-C"), path: "simPos[4].instId")
        }
        #expect(Self.caseLabel(error) == "expiredInstrument")
        #expect(
            error?.description.hasPrefix(#"simPos[4].instId: instrument "BTC-USD-260130-100000-C" expired at 2026-01-30T08:00:00.000Z"#)
                == true)
    }

    // MARK: - The shipped calm snapshot under a shock

    @Test func shockMovesCoinIndicesOnly() throws {
        let calm = Fixtures.calmMarket
        let shocked = try calm.shocked(by: Self.shockMove)
        let before = try #require(calm.indices["BTC-USD"])
        let after = try #require(shocked.indices["BTC-USD"])
        #expect(isClose(after, before * 1.1, relative: 1e-15))
        #expect(isClose(try #require(shocked.indices["ETH-USD"]), try #require(calm.indices["ETH-USD"]) * 1.1, relative: 1e-15))
        #expect(shocked.indices["USDT-USD"] == calm.indices["USDT-USD"])
        #expect(shocked.indices["USDC-USD"] == calm.indices["USDC-USD"])
        #expect(shocked.valuationTime == calm.valuationTime)
    }

    @Test func shockMovesPerpetualMarksByTheQuoteIndex() throws {
        let calm = Fixtures.calmMarket
        let shocked = try calm.shocked(by: Self.shockMove)
        let linearBefore = try #require(calm.marks["BTC-USDT-SWAP"]?.markPrice)
        let linearAfter = try #require(shocked.marks["BTC-USDT-SWAP"]?.markPrice)
        let btcUSDT = try calm.index(base: "BTC", quote: "USDT")
        #expect(
            isClose(linearAfter, linearBefore + Self.shockMove * btcUSDT), "\(linearAfter) vs \(linearBefore + Self.shockMove * btcUSDT)")
        let inverseBefore = try #require(calm.marks["BTC-USD-SWAP"]?.markPrice)
        let inverseAfter = try #require(shocked.marks["BTC-USD-SWAP"]?.markPrice)
        #expect(isClose(inverseAfter, inverseBefore + Self.shockMove * (try calm.indexUSD("BTC"))))
    }

    @Test func zeroShockIsTheSameSnapshotAndMinusOneIsRejected() throws {
        let calm = Fixtures.calmMarket
        let unshocked = try calm.shocked(by: 0)
        #expect(unshocked.indices == calm.indices)
        #expect(unshocked.marks == calm.marks)
        let error = #expect(throws: EngineError.self) { try calm.shocked(by: -1) }
        #expect(error?.description.hasPrefix("idxVol: -1") == true)
    }
}
