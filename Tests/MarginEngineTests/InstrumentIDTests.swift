import MarginEngine
import MarginTestSupport
import Testing

/// Instrument ids (docs/methodology/01-instruments-market.md §1.1), UTC dates, and the catalog loader.
@Suite struct InstrumentIDTests {
    static let march28At0800 = "2025-03-28T08:00:00.000Z"
    static let march28At0800Millis: Int64 = 1_743_148_800_000
    static let hourMillis: Int64 = 3_600_000

    // MARK: - Valid ids

    struct ValidID: Sendable, CustomTestStringConvertible {
        var text: String
        var kind: InstrumentKind
        var base: String
        var quote: String
        var margining: Margining?
        var expiry: String?
        var strike: Double?
        var optionKind: OptionKind?
        var testDescription: String { text }
    }

    static let validIDs: [ValidID] = [
        ValidID(text: "BTC-USDT", kind: .spot, base: "BTC", quote: "USDT"),
        ValidID(text: "ETH-USDC", kind: .spot, base: "ETH", quote: "USDC"),
        ValidID(text: "BTC-USDT-SWAP", kind: .perpetual, base: "BTC", quote: "USDT", margining: .linear),
        ValidID(text: "ETH-USDC-SWAP", kind: .perpetual, base: "ETH", quote: "USDC", margining: .linear),
        ValidID(text: "BTC-USD-SWAP", kind: .perpetual, base: "BTC", quote: "USD", margining: .inverse),
        ValidID(text: "BTC-USDC-250328", kind: .future, base: "BTC", quote: "USDC", margining: .linear, expiry: march28At0800),
        ValidID(text: "BTC-USD-250328", kind: .future, base: "BTC", quote: "USD", margining: .inverse, expiry: march28At0800),
        ValidID(text: "SOL-USD-240229", kind: .future, base: "SOL", quote: "USD", margining: .inverse, expiry: "2024-02-29T08:00:00.000Z"),
        ValidID(
            text: "BTC-USD-250328-100000-C", kind: .option, base: "BTC", quote: "USD", margining: .inverse, expiry: march28At0800,
            strike: 100_000, optionKind: .call),
        ValidID(
            text: "ETH-USD-260424-2500.5-P", kind: .option, base: "ETH", quote: "USD", margining: .inverse,
            expiry: "2026-04-24T08:00:00.000Z", strike: 2500.5, optionKind: .put),
        ValidID(
            text: "BTC-USD-001231-0.5-C", kind: .option, base: "BTC", quote: "USD", margining: .inverse,
            expiry: "2000-12-31T08:00:00.000Z", strike: 0.5, optionKind: .call),
    ]

    @Test(arguments: validIDs)
    func validIDIsParsed(_ expected: ValidID) throws {
        let id = try #require(InstrumentID(expected.text))
        #expect(id.rawValue == expected.text)
        #expect(id.description == expected.text)
        #expect(id.kind == expected.kind)
        #expect(id.baseCurrency == expected.base)
        #expect(id.quoteCurrency == expected.quote)
        #expect(id.family == "\(expected.base)-\(expected.quote)")
        #expect(id.margining == expected.margining)
        #expect(id.expiry?.iso8601 == expected.expiry)
        #expect(id.strikeUSD == expected.strike)
        #expect(id.optionKind == expected.optionKind)
    }

    @Test func expiryIsEightOClockUTCOfTheDate() throws {
        let id = try #require(InstrumentID("BTC-USD-250328"))
        #expect(id.expiry == UnixMillis(Self.march28At0800Millis))
        #expect(id.expiry == UnixMillis.utc(year: 2025, month: 3, day: 28, hour: 8))
    }

    // MARK: - Invalid ids

    @Test(arguments: [
        "", "BTC", "BTC-USDT-SWAP-X", "BTC-USDT-251301", "BTC-USDT-250230", "BTC-USDT-250229", "BTC-USDT-250001",
        "BTC-USDT-250300", "BTC-USDT-2503", "BTC-USDT-2503281", "btc-usdt", "Btc-USDT-SWAP", "BTC-USDT-swap",
        "BTC-USDT-250328-100000-C", "BTC-USDC-250328-100000-C", "BTC-USD-250328-0-C", "BTC-USD-250328-100000-X",
        "BTC-USD-250328-100000-c", "BTC-USD-250328-0100000-C", "BTC-USD-250328-1e5-C", "BTC-USD-250328--100-C",
        "BTC-USD-250328-100000.-C", "BTC-USD-250328-+100-C", "BTC-USD-250328-100000", "BTC-USD-SWAP-100000-C",
        "BTC-BTC", "BTC-BTC-SWAP", "BTC-EUR-SWAP", "BTC-EUR-250328", "BTC--SWAP", "-USDT", "BTC-USDT-", "BTC_USDT",
        "BTC-USDT ", " BTC-USDT", "BTCBTCBTCBTCX-USDT", "BTC-USD-25O328",
    ])
    func invalidIDIsNil(_ text: String) {
        #expect(InstrumentID(text) == nil)
    }

    // MARK: - UnixMillis

    struct CivilDate: Sendable, CustomTestStringConvertible {
        var year: Int
        var month: Int
        var day: Int
        var hour: Int
        var millis: Int64
        var iso8601: String
        var testDescription: String { iso8601 }
    }

    static let dates: [CivilDate] = [
        CivilDate(year: 1970, month: 1, day: 1, hour: 0, millis: 0, iso8601: "1970-01-01T00:00:00.000Z"),
        CivilDate(year: 1969, month: 12, day: 31, hour: 0, millis: -86_400_000, iso8601: "1969-12-31T00:00:00.000Z"),
        CivilDate(year: 2000, month: 3, day: 1, hour: 0, millis: 951_868_800_000, iso8601: "2000-03-01T00:00:00.000Z"),
        CivilDate(year: 2024, month: 2, day: 29, hour: 8, millis: 1_709_193_600_000, iso8601: "2024-02-29T08:00:00.000Z"),
        CivilDate(year: 2025, month: 3, day: 28, hour: 8, millis: march28At0800Millis, iso8601: march28At0800),
        CivilDate(year: 2026, month: 1, day: 30, hour: 8, millis: 1_769_760_000_000, iso8601: "2026-01-30T08:00:00.000Z"),
        CivilDate(year: 2025, month: 12, day: 31, hour: 23, millis: 1_767_222_000_000, iso8601: "2025-12-31T23:00:00.000Z"),
    ]

    @Test(arguments: dates)
    func utcAndISO8601RoundTrip(_ date: CivilDate) {
        let instant = UnixMillis.utc(year: date.year, month: date.month, day: date.day, hour: date.hour)
        #expect(instant.rawValue == date.millis)
        #expect(instant.iso8601 == date.iso8601)
    }

    @Test func iso8601ShowsMillisecondsAndHandlesTimesBefore1970() {
        #expect(UnixMillis(1_767_115_875_944).iso8601 == "2025-12-30T17:31:15.944Z")
        #expect(UnixMillis(-1).iso8601 == "1969-12-31T23:59:59.999Z")
    }

    @Test func leapDaysAreCounted() {
        let day = UnixMillis.millisecondsPerDay
        #expect(UnixMillis.utc(year: 2024, month: 3, day: 1).rawValue - UnixMillis.utc(year: 2024, month: 2, day: 28).rawValue == 2 * day)
        #expect(UnixMillis.utc(year: 2025, month: 3, day: 1).rawValue - UnixMillis.utc(year: 2025, month: 2, day: 28).rawValue == day)
        #expect(UnixMillis.utc(year: 2100, month: 3, day: 1).rawValue - UnixMillis.utc(year: 2100, month: 2, day: 28).rawValue == day)
        #expect(UnixMillis.utc(year: 2000, month: 3, day: 1).rawValue - UnixMillis.utc(year: 2000, month: 2, day: 28).rawValue == 2 * day)
        #expect(InstrumentID("BTC-USD-000229") != nil)
        #expect(InstrumentID("BTC-USD-250229") == nil)
    }

    @Test func yearsUseACT365() {
        let start = UnixMillis.utc(year: 2025, month: 1, day: 1)
        #expect(isClose(start.years(until: UnixMillis.utc(year: 2026, month: 1, day: 1)), 1))
        #expect(isClose(start.years(until: UnixMillis.utc(year: 2024, month: 12, day: 31)), -1.0 / 365))
    }

    // MARK: - Catalog

    static let swapEntry = #"""
        {"instId":"BTC-USDT-SWAP","instType":"SWAP","uly":"BTC-USDT","instFamily":"BTC-USDT","settleCcy":"USDT","ctType":"linear",
         "ctVal":"0.01","ctMult":"1","ctValCcy":"BTC","optType":"","stk":"","expTime":"","tickSz":"0.1","lotSz":"0.01","minSz":"0.01"}
        """#
    static let futureEntry = #"""
        {"instId":"BTC-USD-250328","instType":"FUTURES","uly":"BTC-USD","settleCcy":"BTC","ctType":"inverse","ctVal":"100",
         "ctMult":"1","tickSz":"0.1","lotSz":"1","minSz":"1","expTime":"1743148800000"}
        """#
    static let optionEntry = #"""
        {"instId":"BTC-USD-250328-100000-C","instType":"OPTION","uly":"BTC-USD","settleCcy":"BTC","ctType":"","optType":"C",
         "stk":"100000","ctVal":"0.01","ctMult":"1","tickSz":"0.0001","lotSz":"1","minSz":"1","expTime":"1743148800000"}
        """#
    static let spotEntry = #"""
        {"instId":"BTC-USDT","instType":"SPOT","baseCcy":"BTC","quoteCcy":"USDT","ctVal":"","tickSz":"0.1","lotSz":"0.00000001",
         "minSz":"0.00001"}
        """#
    static let entries = [swapEntry, futureEntry, optionEntry, spotEntry]

    static func json(_ text: String) throws -> JSONValue { try JSONParser.parse(text) }

    /// `entry` with `key` set to `value` (removed when nil).
    static func edited(_ entry: String, _ key: String, _ value: JSONValue?) throws -> JSONValue {
        guard case .object(var object) = try json(entry) else {
            Issue.record("catalog entry is not an object")
            return .null
        }
        object[key] = value
        return .object(object)
    }

    static func expectCatalog(_ catalog: InstrumentCatalog) throws {
        #expect(catalog.count == 4)
        #expect(catalog.instruments.map(\.id.rawValue) == ["BTC-USD-250328", "BTC-USD-250328-100000-C", "BTC-USDT", "BTC-USDT-SWAP"])
        let swap = try catalog.instrument("BTC-USDT-SWAP", path: "x")
        #expect(swap.contractValue == 0.01)
        #expect(swap.settleCurrency == "USDT")
        #expect(swap.margining == .linear)
        let future = try catalog.instrument("BTC-USD-250328", path: "x")
        #expect(future.contractValue == 100)
        #expect(future.settleCurrency == "BTC")
        #expect(future.expiry?.rawValue == Self.march28At0800Millis)
        let option = try catalog.instrument("BTC-USD-250328-100000-C", path: "x")
        #expect(option.coinsPerContract == 0.01)
        #expect(option.tickSize == 0.0001)
        #expect(option.id.strikeUSD == 100_000)
        let spot = try catalog.instrument("BTC-USDT", path: "x")
        #expect(spot.kind == .spot)
        #expect(!spot.isDerivative)
        #expect(spot.minimumSize == 0.00001)
    }

    @Test func catalogAcceptsTheWholeResponse() throws {
        let text = #"{"code":"0","msg":"","data":["# + Self.entries.joined(separator: ",") + "]}"
        try Self.expectCatalog(try InstrumentCatalog(bytes: Array(text.utf8)))
    }

    @Test func catalogAcceptsTheBareDataArray() throws {
        let text = "[" + Self.entries.joined(separator: ",") + "]"
        try Self.expectCatalog(try InstrumentCatalog(bytes: Array(text.utf8)))
    }

    @Test func catalogEntryKeepsThePublishedObject() throws {
        let catalog = try InstrumentCatalog(json: .array([try Self.json(Self.swapEntry)]))
        let swap = try catalog.instrument("BTC-USDT-SWAP", path: "x")
        #expect(swap.catalogEntry["ctValCcy"] == .string("BTC"))
    }

    struct BadEntry: Sendable, CustomTestStringConvertible {
        var name: String
        var entry: String
        var key: String
        var value: JSONValue?
        /// The error's case label, e.g. `invalidField`.
        var errorCase: String
        /// The field path the message must start with.
        var path: String
        var mentions: [String]
        var testDescription: String { name }
    }

    static let badEntries: [BadEntry] = [
        BadEntry(
            name: "instType of another kind", entry: swapEntry, key: "instType", value: .string("FUTURES"), errorCase: "invalidField",
            path: "catalog[0].instType", mentions: ["FUTURES", "BTC-USDT-SWAP"]),
        BadEntry(
            name: "unknown instType", entry: swapEntry, key: "instType", value: .string("PERP"), errorCase: "invalidField",
            path: "catalog[0].instType", mentions: ["PERP"]),
        BadEntry(
            name: "instType missing", entry: swapEntry, key: "instType", value: nil, errorCase: "missingField",
            path: "catalog[0].instType", mentions: []),
        BadEntry(
            name: "ctType inverse on a linear swap", entry: swapEntry, key: "ctType", value: .string("inverse"), errorCase: "invalidField",
            path: "catalog[0].ctType", mentions: ["inverse", "linear"]),
        BadEntry(
            name: "settleCcy of a linear swap", entry: swapEntry, key: "settleCcy", value: .string("USDC"), errorCase: "invalidField",
            path: "catalog[0].settleCcy", mentions: ["USDC", "USDT"]),
        BadEntry(
            name: "settleCcy of an inverse future", entry: futureEntry, key: "settleCcy", value: .string("USDT"), errorCase: "invalidField",
            path: "catalog[0].settleCcy", mentions: ["USDT", "BTC-USD-250328"]),
        BadEntry(
            name: "uly of another coin", entry: swapEntry, key: "uly", value: .string("ETH-USDT"), errorCase: "invalidField",
            path: "catalog[0].uly", mentions: ["ETH-USDT", "BTC-USDT"]),
        BadEntry(
            name: "optType of the other kind", entry: optionEntry, key: "optType", value: .string("P"), errorCase: "invalidField",
            path: "catalog[0].optType", mentions: ["P", "BTC-USD-250328-100000-C"]),
        BadEntry(
            name: "stk of another strike", entry: optionEntry, key: "stk", value: .string("90000"), errorCase: "invalidField",
            path: "catalog[0].stk", mentions: ["90000"]),
        BadEntry(
            name: "expTime at midnight", entry: futureEntry, key: "expTime", value: .string(String(march28At0800Millis - 8 * hourMillis)),
            errorCase: "invalidField", path: "catalog[0].expTime", mentions: ["1743120000000", march28At0800]),
        BadEntry(
            name: "expTime one day late", entry: optionEntry, key: "expTime", value: .number(String(march28At0800Millis + 24 * hourMillis)),
            errorCase: "invalidField", path: "catalog[0].expTime", mentions: ["1743235200000"]),
        BadEntry(
            name: "ctVal zero", entry: swapEntry, key: "ctVal", value: .string("0"), errorCase: "invalidField",
            path: "catalog[0].ctVal", mentions: ["0", "greater than 0"]),
        BadEntry(
            name: "ctVal negative", entry: futureEntry, key: "ctVal", value: .number("-100"), errorCase: "invalidField",
            path: "catalog[0].ctVal", mentions: ["-100"]),
        BadEntry(
            name: "ctVal missing", entry: optionEntry, key: "ctVal", value: nil, errorCase: "missingField",
            path: "catalog[0].ctVal", mentions: []),
        BadEntry(
            name: "ctMult zero", entry: optionEntry, key: "ctMult", value: .string("0"), errorCase: "invalidField",
            path: "catalog[0].ctMult", mentions: ["0"]),
        BadEntry(
            name: "tickSz not a number", entry: swapEntry, key: "tickSz", value: .string("abc"), errorCase: "invalidField",
            path: "catalog[0].tickSz", mentions: ["abc"]),
        BadEntry(
            name: "lotSz not finite", entry: spotEntry, key: "lotSz", value: .string("1e999"), errorCase: "invalidField",
            path: "catalog[0].lotSz", mentions: ["1e999"]),
        BadEntry(
            name: "baseCcy of a spot pair", entry: spotEntry, key: "baseCcy", value: .string("ETH"), errorCase: "invalidField",
            path: "catalog[0].baseCcy", mentions: ["ETH", "BTC"]),
        BadEntry(
            name: "malformed instId", entry: swapEntry, key: "instId", value: .string("BTC-USDT-SWAPP"), errorCase: "unknownInstrument",
            path: "catalog[0].instId", mentions: ["BTC-USDT-SWAPP"]),
        BadEntry(
            name: "instId not a string", entry: swapEntry, key: "instId", value: .number("1"), errorCase: "invalidField",
            path: "catalog[0].instId", mentions: []),
    ]

    @Test(arguments: badEntries)
    func catalogRejectsAnInconsistentEntry(_ testCase: BadEntry) throws {
        let entry = try Self.edited(testCase.entry, testCase.key, testCase.value)
        let error = #expect(throws: EngineError.self) { try InstrumentCatalog(json: .array([entry])) }
        guard let error else { return }
        #expect(Mirror(reflecting: error).children.first?.label == testCase.errorCase, "\(error)")
        #expect(error.description.hasPrefix(testCase.path + ":") || error.description.hasPrefix(testCase.path + " "), "\(error)")
        for fragment in testCase.mentions {
            #expect(error.description.contains(fragment), "\(error) should mention \(fragment)")
        }
    }

    @Test func catalogRejectsADuplicateInstID() throws {
        let bare = "[" + [Self.swapEntry, Self.futureEntry, Self.swapEntry].joined(separator: ",") + "]"
        let error = #expect(throws: EngineError.self) { try InstrumentCatalog(bytes: Array(bare.utf8)) }
        #expect(error == .invalidField(path: "catalog[2].instId", value: "\"BTC-USDT-SWAP\"", reason: "appears twice in the catalog"))

        let envelope = #"{"code":"0","data":"# + bare + "}"
        let inEnvelope = #expect(throws: EngineError.self) { try InstrumentCatalog(bytes: Array(envelope.utf8)) }
        #expect(inEnvelope?.description.hasPrefix("catalog.data[2].instId:") == true)
        #expect(inEnvelope?.description.contains("BTC-USDT-SWAP") == true)
    }

    @Test(arguments: [#""1""#, #""50001""#, "1"])
    func catalogRejectsAnErrorResponse(_ code: String) throws {
        let text = #"{"code":"# + code + #","msg":"error","data":["# + Self.swapEntry + "]}"
        let error = #expect(throws: EngineError.self) { try InstrumentCatalog(bytes: Array(text.utf8)) }
        #expect(error.flatMap { Mirror(reflecting: $0).children.first?.label } == "invalidField")
        #expect(error?.description.hasPrefix("catalog.code: \(code)") == true, "\(String(describing: error))")
    }

    @Test func catalogEnvelopeNeedsData() {
        let error = #expect(throws: EngineError.self) { try InstrumentCatalog(bytes: Array(#"{"code":"0","msg":""}"#.utf8)) }
        #expect(error == .missingField(path: "catalog.data"))
    }

    @Test func catalogRejectsMalformedJSON() {
        let error = #expect(throws: EngineError.self) { try InstrumentCatalog(bytes: Array(#"[{"instId":"#.utf8)) }
        guard case .malformedDocument(let document, let detail) = error else {
            Issue.record("expected malformedDocument, got \(String(describing: error))")
            return
        }
        #expect(document == "catalog")
        #expect(detail.contains("invalid JSON at byte"))
    }

    @Test func lookupOfAnUnknownIDNamesIt() throws {
        let catalog = try InstrumentCatalog(json: .array([try Self.json(Self.swapEntry)]))
        let error = #expect(throws: EngineError.self) { try catalog.instrument("ETH-USDT-SWAP", path: "simPos[3].instId") }
        #expect(error == .unknownInstrument(path: "simPos[3].instId", instrumentID: "ETH-USDT-SWAP"))
        #expect(error?.description == #"simPos[3].instId: unknown instrument "ETH-USDT-SWAP""#)
        #expect(catalog.instrument("ETH-USDT-SWAP") == nil)
    }

    @Test(arguments: ["BTC-USD-250328-100000-C", "DOGE-USDT-SWAP", "BTC-USDT-SWAP ", "btc-usdt-swap", ""])
    func shippedCatalogNeverGuessesAnID(_ id: String) {
        let error = #expect(throws: EngineError.self) { try Fixtures.catalog.instrument(id, path: "simPos[0].instId") }
        #expect(error == .unknownInstrument(path: "simPos[0].instId", instrumentID: id))
    }

    @Test func shippedCatalogIsSortedAndUnique() {
        let ids = Fixtures.catalog.instruments.map(\.id.rawValue)
        #expect(ids == ids.sorted())
        #expect(Set(ids).count == ids.count)
        #expect(Fixtures.catalog.instrument("BTC-USDT-SWAP")?.contractValue == 0.01)
        #expect(Fixtures.catalog.instrument("BTC-USD-SWAP")?.contractValue == 100)
    }
}
