import Foundation
import MarginEngine
import MarketFeedHTTP
import Testing

@testable import MarketFeed

/// OKX's documented example responses (Resources/okx-docs, sources in SOURCES.md) read by the client and
/// assembled into a snapshot and catalog.
struct OKXDocsFixtureTests {
    // What a test adds to the documented examples (they are independent of each other).
    static let usdtUSD = "0.9995"
    /// Catalog entries as OKX lists them for the documented perpetual and options (ctVal etc. are OKX's).
    static let swapEntry: JSONValue = .object([
        ("instId", .string("BTC-USDT-SWAP")), ("instType", .string("SWAP")), ("uly", .string("BTC-USDT")),
        ("instFamily", .string("BTC-USDT")),
        ("settleCcy", .string("USDT")), ("ctVal", .string("0.01")), ("ctMult", .string("1")), ("ctValCcy", .string("BTC")),
        ("ctType", .string("linear")), ("tickSz", .string("0.1")), ("lotSz", .string("0.01")), ("minSz", .string("0.01")),
        ("state", .string("live")),
    ])
    static func optionEntry(_ kind: String) -> JSONValue {
        .object([
            ("instId", .string("BTC-USD-220309-33000-\(kind)")), ("instType", .string("OPTION")), ("uly", .string("BTC-USD")),
            ("instFamily", .string("BTC-USD")), ("settleCcy", .string("BTC")), ("ctVal", .string("0.01")), ("ctMult", .string("1")),
            ("ctValCcy", .string("BTC")), ("optType", .string(kind)), ("stk", .string("33000")), ("expTime", .string("1646812800000")),
            ("tickSz", .string("0.0005")), ("lotSz", .string("1")), ("minSz", .string("1")), ("state", .string("live")),
        ])
    }

    static func rows(_ name: String) throws -> [JSONValue] {
        let url = try #require(Bundle.module.url(forResource: "Resources/okx-docs/\(name)", withExtension: "json"), "fixture \(name).json")
        return try OKXEnvelope.data(of: Array(try Data(contentsOf: url)), status: 200, endpoint: name)
    }

    /// Every documented response, as the upstream would answer, plus the test's stablecoin index and catalog entries.
    static func documentedAnswers() throws -> UpstreamAnswers {
        var answers = UpstreamAnswers()
        answers.instruments = try rows("instruments-spot") + [swapEntry, optionEntry("C"), optionEntry("P")]
        answers.markPrices = try rows("mark-price")
        answers.indexTickers = try rows("index-tickers") + [.object([("instId", .string("USDT-USD")), ("idxPx", .string(usdtUSD))])]
        answers.optionSummaries = try rows("opt-summary")
        answers.fundingRates = try rows("funding-rate")
        answers.fundingRatesRequested = true
        return answers
    }

    @Test func everyDocumentedResponseIsReadAsAnEnvelope() throws {
        for name in [
            "instruments-spot", "mark-price", "index-tickers", "opt-summary", "funding-rate", "ticker", "balance", "positions",
            "system-status",
        ] {
            #expect(try !Self.rows(name).isEmpty, "\(name).json has rows")
        }
    }

    @Test func documentedAnswersMakeASnapshotWithOKXValues() throws {
        let assembled = MarketAssembler.assemble(try Self.documentedAnswers(), source: "OKX docs")
        let snapshot = try #require(assembled.snapshot)
        // The snapshot time is the mark price's ts.
        #expect(snapshot.valuationTime == UnixMillis(1_597_026_383_085))
        #expect(snapshot.indices["BTC-USDT"] == 43350)
        #expect(snapshot.indices["USDT-USD"] == 0.9995)
        #expect(snapshot.marks["BTC-USDT-SWAP"]?.markPrice == 200)
        #expect(snapshot.marks["BTC-USDT-SWAP"]?.fundingRate == 0.0000182221218054)
        for kind in ["C", "P"] {
            let quote = try #require(snapshot.marks["BTC-USD-220309-33000-\(kind)"])
            #expect(quote.markVolatility == 1.5551965233045728)
            #expect(quote.forwardUSD == 39016.8143629068452065)
            #expect(quote.markPrice == nil)
        }
        #expect(assembled.catalog.count == 4)
        #expect(assembled.isUsable)
        // The options' marks are not in the mark-price example: the volatility is the mark, nothing is named.
        #expect(!assembled.problems.contains { $0.subject.hasPrefix("BTC-USD-220309") })
    }

    @Test func theWrittenSnapshotReadsBackBitForBit() throws {
        let assembled = MarketAssembler.assemble(try Self.documentedAnswers(), source: "OKX docs")
        let document = try #require(assembled.snapshotDocument)
        let reread = try MarketSnapshot(bytes: Array(JSONWriter.serialize(document, pretty: true).utf8))
        let original = try #require(assembled.snapshot)
        #expect(reread.valuationTime == original.valuationTime)
        #expect(reread.indices == original.indices)
        #expect(reread.marks == original.marks)
        #expect(reread.source == "OKX docs")
        let catalog = try InstrumentCatalog(bytes: Array(JSONWriter.serialize(assembled.catalogDocument).utf8))
        #expect(
            catalog.instruments.map(\.id.rawValue) == ["BTC-USD-220309-33000-C", "BTC-USD-220309-33000-P", "BTC-USDT", "BTC-USDT-SWAP"])
    }

    @Test func withoutAStablecoinIndexNothingIsUsableAndEachInstrumentSaysWhy() throws {
        var answers = try Self.documentedAnswers()
        answers.indexTickers = try Self.rows("index-tickers")  // BTC-USDT only: no USD price for BTC or USDT
        let assembled = MarketAssembler.assemble(answers, source: "OKX docs")
        #expect(!assembled.isUsable)
        let subjects = Set(assembled.problems.map(\.subject))
        for id in ["BTC-USDT", "BTC-USDT-SWAP", "BTC-USD-220309-33000-C", "BTC-USD-220309-33000-P"] {
            #expect(subjects.contains(id), "\(id) is named")
        }
        #expect(assembled.problems.first { $0.subject == "BTC-USDT-SWAP" }?.detail.contains("no index price") == true)
    }

    @Test func optionsExpiredAtTheSnapshotTimeAreSkippedAndNamed() throws {
        var answers = try Self.documentedAnswers()
        // The funding-rate example's time (2025) as the mark time: the 2022 options have expired.
        answers.markPrices = [
            .object([("instId", .string("BTC-USDT-SWAP")), ("markPx", .string("200")), ("ts", .string("1743588686291"))])
        ]
        let assembled = MarketAssembler.assemble(answers, source: "OKX docs")
        let snapshot = try #require(assembled.snapshot)
        #expect(snapshot.marks["BTC-USD-220309-33000-C"] == nil)
        let problem = try #require(assembled.problems.first { $0.subject == "BTC-USD-220309-33000-C" })
        #expect(problem.detail.contains("expired at 2022-03-09T08:00:00"))
        #expect(!assembled.catalog.instruments.contains { $0.kind == .option })
    }

    @Test func anOptionWithNeitherMarkNorVolatilityIsSkippedAndNamed() throws {
        var answers = try Self.documentedAnswers()
        answers.optionSummaries = try Self.rows("opt-summary").filter {
            if case .object(let row) = $0 { return row["instId"] != .string("BTC-USD-220309-33000-P") }
            return true
        }
        let assembled = MarketAssembler.assemble(answers, source: "OKX docs")
        let problem = try #require(assembled.problems.first { $0.subject == "BTC-USD-220309-33000-P" })
        #expect(problem.detail.contains("neither markPx"))
        #expect(assembled.snapshot?.marks["BTC-USD-220309-33000-P"] == nil)
        #expect(assembled.snapshot?.marks["BTC-USD-220309-33000-C"] != nil)
    }

    @Test(arguments: [("markPx", "abc", "is not a number"), ("markPx", "0", "price"), ("markPx", "1e300", "price")])
    func aBadMarkIsSkippedAndNamed(field: String, value: String, expected: String) throws {
        var answers = try Self.documentedAnswers()
        answers.markPrices = [.object([("instId", .string("BTC-USDT-SWAP")), (field, .string(value)), ("ts", .string("1597026383085"))])]
        let assembled = MarketAssembler.assemble(answers, source: "OKX docs")
        let problem = try #require(assembled.problems.first { $0.subject == "BTC-USDT-SWAP" })
        #expect(problem.detail.contains(expected), "\(problem)")
        #expect(assembled.snapshot?.marks["BTC-USDT-SWAP"] == nil)
    }

    @Test func aSpotPairWithNoIndexTakesItsTickerAsARepresentativeIndex() throws {
        var answers = try Self.documentedAnswers()
        answers.indexTickers = [
            .object([("instId", .string("USDT-USD")), ("idxPx", .string(Self.usdtUSD)), ("ts", .string("1597026383085"))])
        ]
        answers.spotTickers = [.object([("instId", .string("BTC-USDT")), ("last", .string("43001.5"))])]
        let assembled = MarketAssembler.assemble(answers, source: "OKX docs")
        let snapshot = try #require(assembled.snapshot)
        #expect(snapshot.indices["BTC-USDT"] == 43001.5)
        #expect(snapshot.representative == ["BTC-USDT"])
        #expect(assembled.problems.contains { $0.subject == "BTC-USDT" && $0.detail.contains("representative") })
    }

    @Test func theCoinFilterKeepsOnlyThoseCoinsAndTheStablecoinIndices() throws {
        var answers = try Self.documentedAnswers()
        answers.indexTickers.append(
            .object([("instId", .string("ETH-USD")), ("idxPx", .string("3000")), ("ts", .string("1597026383085"))]))
        let assembled = MarketAssembler.assemble(answers, coins: ["ETH"], source: "OKX docs")
        #expect(assembled.catalog.count == 0)
        #expect(assembled.snapshot?.indices.keys.sorted() == ["ETH-USD", "USDT-USD"])
        #expect(!assembled.isUsable)
    }

    @Test func theDocumentedSystemStatusHasTheFieldsPmServeWrites() throws {
        let row = try #require(try Self.rows("system-status").first)
        guard case .object(let fields) = row else {
            Issue.record("not an object")
            return
        }
        #expect(
            Set(fields.keys) == [
                "begin", "end", "href", "preOpenBegin", "scheDesc", "serviceType", "state", "maintType", "env", "system", "title",
            ])
    }
}
