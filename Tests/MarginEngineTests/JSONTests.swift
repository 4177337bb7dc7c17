import MarginEngine
import MarginTestSupport
import PropertyBased
import Testing

/// The strict JSON layer: `JSONParser`, `JSONWriter`, `DecimalText` and `FieldReader`.
@Suite struct JSONTests {
    static let depthLimit = JSONParser.defaultMaxDepth
    static let maximumNumberLength = 400
    static let writerSample: JSONValue = .object([
        ("name", .string("Zoë \"quoted\" \\ / \n\t\r\u{08}\u{0C}\u{01}\u{1F} 😀 \u{2028}")),
        ("numbers", .array([.number("0"), .number("-0"), .number("-0.5"), .number("1e-7"), .number("97078.9"), .number("1E+2")])),
        ("flags", .array([.bool(true), .bool(false), .null])),
        ("emptyObject", .object(JSONObject())),
        ("emptyArray", .array([])),
        ("nested", .object([("z", .object([("a", .array([.object([("c", .string(""))]), .array([.array([])])]))]))])),
        ("", .string("empty key")),
    ])

    /// A document given as bytes, with a name for the test report.
    struct Document: Sendable, CustomTestStringConvertible {
        var name: String
        var bytes: [UInt8]
        var testDescription: String { name }

        init(_ name: String, _ text: String) {
            self.name = name
            self.bytes = Array(text.utf8)
        }

        init(_ name: String, bytes: [UInt8]) {
            self.name = name
            self.bytes = bytes
        }
    }

    static func nestedArrays(_ count: Int, innermost: String) -> String {
        String(repeating: "[", count: count) + innermost + String(repeating: "]", count: count)
    }

    // MARK: - Parser: accepted documents

    @Test func nestedDocumentKeepsStructureAndKeyOrder() throws {
        let value = try JSONParser.parse(#" { "b" : [1, {"c": null}], "a": {"d": true, "e": "x", "f": false}, "g": [] } "#)
        let expected: JSONValue = .object([
            ("b", .array([.number("1"), .object([("c", .null)])])),
            ("a", .object([("d", .bool(true)), ("e", .string("x")), ("f", .bool(false))])),
            ("g", .array([])),
        ])
        #expect(value == expected)
        guard case .object(let object) = value else {
            Issue.record("not an object: \(value)")
            return
        }
        #expect(object.keys == ["b", "a", "g"])
    }

    @Test(arguments: ["0", "-0", "-0.5", "1e-7", "1E+2", "2.5e-10", "97078.9", "1.50", "12345678901234567890123456789"])
    func numbersKeepTheirLiteralText(_ literal: String) throws {
        #expect(try JSONParser.parse(literal) == .number(literal))
        #expect(try JSONParser.parse("[ \(literal) ]") == .array([.number(literal)]))
    }

    struct StringCase: Sendable, CustomTestStringConvertible {
        var json: String
        var expected: String
        var testDescription: String { json }
    }

    static let stringCases: [StringCase] = [
        StringCase(json: #""\u00e9""#, expected: "é"),
        StringCase(json: #""\u00E9t\u00e9""#, expected: "été"),
        StringCase(json: #""\uD83D\uDE00""#, expected: "😀"),
        StringCase(json: #""a\ud83d\ude00b""#, expected: "a😀b"),
        StringCase(json: #""\uDBFF\uDFFF""#, expected: "\u{10FFFF}"),
        StringCase(json: #""\u0000""#, expected: "\u{0}"),
        StringCase(json: #""x\u0041y""#, expected: "xAy"),
        StringCase(json: #""a\"b\\c\/d\b\f\n\r\t""#, expected: "a\"b\\c/d\u{08}\u{0C}\n\r\t"),
        StringCase(json: "\"Zoë 😀 \u{7F}\"", expected: "Zoë 😀 \u{7F}"),
        StringCase(json: #""""#, expected: ""),
    ]

    @Test(arguments: stringCases)
    func stringEscapesAreDecoded(_ testCase: StringCase) throws {
        #expect(try JSONParser.parse(testCase.json) == .string(testCase.expected))
    }

    // MARK: - Parser: rejected documents

    static let invalidDocuments: [Document] = [
        Document("trailing comma in an array", "[1,2,]"),
        Document("trailing comma in an object", #"{"a":1,}"#),
        Document("duplicate keys", #"{"a":1,"a":2}"#),
        Document("duplicate keys after unescaping", #"{"a":1,"\u0061":2}"#),
        Document("duplicate keys in a nested object", #"{"x":{"k":1,"k":1}}"#),
        Document("leading zero", "01"),
        Document("leading zero in an array", "[01]"),
        Document("negative leading zero", "-01"),
        Document("plus sign", "+1"),
        Document("NaN", "NaN"),
        Document("NaN in an array", "[NaN]"),
        Document("Infinity", "Infinity"),
        Document("negative Infinity", "-Infinity"),
        Document("fraction without integer part", ".5"),
        Document("fraction without digits", "1."),
        Document("exponent without digits", "1e"),
        Document("signed exponent without digits", "1e+"),
        Document("hexadecimal number", "0x10"),
        Document("number literal too long", String(repeating: "1", count: maximumNumberLength + 1)),
        Document("unterminated string", #""abc"#),
        Document("unterminated escape", #""abc\"#),
        Document("unterminated string in an object", #"{"a":"b}"#),
        Document("tab in a string", "\"a\tb\""),
        Document("newline in a string", "\"a\nb\""),
        Document("control character U+0001 in a string", "\"\u{01}\""),
        Document("invalid UTF-8 byte FF", bytes: [0x22, 0xFF, 0x22]),
        Document("truncated UTF-8 sequence", bytes: [0x22, 0xC3, 0x22]),
        Document("overlong UTF-8 encoding", bytes: [0x22, 0xC0, 0x80, 0x22]),
        Document("UTF-8 encoded surrogate", bytes: [0x22, 0xED, 0xA0, 0x80, 0x22]),
        Document("invalid UTF-8 outside a string", bytes: [0xFF]),
        Document("lone high surrogate", #""\uD800""#),
        Document("lone low surrogate", #""\uDC00""#),
        Document("high surrogate followed by text", #""\uD800x""#),
        Document("high surrogate followed by a non-surrogate escape", #""\uD800\u0041""#),
        Document("two high surrogates", #""\uDBFF\uDBFF""#),
        Document("invalid escape", #""\x""#),
        Document("invalid hex digit", #""\u12G4""#),
        Document("truncated unicode escape", #""\u12""#),
        Document("trailing content after an object", "{} {}"),
        Document("trailing content after a number", "1 2"),
        Document("trailing garbage", "[]x"),
        Document("two literals", "nullnull"),
        Document("empty input", ""),
        Document("whitespace only", " \n\t "),
        Document("truncated literal", "tru"),
        Document("capitalised literal", "True"),
        Document("single-quoted string", "'a'"),
        Document("unquoted key", "{a:1}"),
        Document("missing colon", #"{"a" 1}"#),
        Document("missing comma", "[1 2]"),
        Document("unclosed array", "[1,2"),
        Document("unclosed object", #"{"a":1"#),
        Document("non-breaking space as whitespace", "\u{A0}1"),
    ]

    @Test(arguments: invalidDocuments)
    func invalidDocumentIsRejected(_ document: Document) {
        #expect(throws: JSONSyntaxError.self) { try JSONParser.parse(document.bytes) }
    }

    @Test func syntaxErrorReportsTheOffset() {
        let trailingComma = #expect(throws: JSONSyntaxError.self) { try JSONParser.parse("[1,2,]") }
        #expect(trailingComma?.offset == 5)
        #expect(trailingComma?.description.hasPrefix("invalid JSON at byte 5:") == true)

        let duplicate = #expect(throws: JSONSyntaxError.self) { try JSONParser.parse(#"{"a":1,"a":2}"#) }
        #expect(duplicate?.offset == 7)
        #expect(duplicate?.description.contains(#"duplicate key "a""#) == true)
    }

    // MARK: - Parser: depth limit
    //
    // The root value is at depth 0 and a container's members one level deeper; a value deeper than
    // `maxDepth` is rejected. So 64 arrays may hold a scalar, and an empty array may sit 64 levels down.

    @Test func sixtyFourNestedArraysAroundAScalarAreAccepted() throws {
        var value = try JSONParser.parse(Self.nestedArrays(Self.depthLimit, innermost: "7"))
        var levels = 0
        while case .array(let items) = value, items.count == 1 {
            levels += 1
            value = items[0]
        }
        #expect(levels == Self.depthLimit)
        #expect(value == .number("7"))
    }

    @Test func sixtyFiveNestedArraysAroundAScalarAreRejected() {
        let error = #expect(throws: JSONSyntaxError.self) {
            try JSONParser.parse(Self.nestedArrays(Self.depthLimit + 1, innermost: "7"))
        }
        #expect(error?.reason.contains("nesting deeper than 64") == true)
    }

    @Test func emptyArrayMaySitAtTheDepthLimitButNotBelowIt() {
        #expect(throws: Never.self) { try JSONParser.parse(Self.nestedArrays(Self.depthLimit + 1, innermost: "")) }
        #expect(throws: JSONSyntaxError.self) { try JSONParser.parse(Self.nestedArrays(Self.depthLimit + 2, innermost: "")) }
    }

    @Test func nestedObjectsCountTowardsTheSameLimit() {
        func nestedObjects(_ count: Int) -> String {
            String(repeating: #"{"a":"#, count: count) + "1" + String(repeating: "}", count: count)
        }
        #expect(throws: Never.self) { try JSONParser.parse(nestedObjects(Self.depthLimit)) }
        #expect(throws: JSONSyntaxError.self) { try JSONParser.parse(nestedObjects(Self.depthLimit + 1)) }
    }

    @Test func customDepthLimitIsHonoured() {
        #expect(throws: Never.self) { try JSONParser.parse("[[1]]", maxDepth: 2) }
        #expect(throws: JSONSyntaxError.self) { try JSONParser.parse("[[1]]", maxDepth: 1) }
        #expect(throws: Never.self) { try JSONParser.parse("1", maxDepth: 0) }
        #expect(throws: JSONSyntaxError.self) { try JSONParser.parse("[1]", maxDepth: 0) }
    }

    @Test func hostilelyDeepInputFailsWithoutExhaustingTheStack() {
        let error = #expect(throws: JSONSyntaxError.self) {
            try JSONParser.parse(Self.nestedArrays(200_000, innermost: ""))
        }
        #expect(error?.offset == Self.depthLimit + 1)
    }

    // MARK: - Writer

    @Test(arguments: [false, true])
    func writerOutputParsesBackToTheSameValue(pretty: Bool) throws {
        let text = JSONWriter.serialize(Self.writerSample, pretty: pretty)
        #expect(try JSONParser.parse(text) == Self.writerSample)
    }

    @Test func compactOutputIsExact() {
        let value: JSONValue = .object([
            ("b", .array([.number("1"), .null, .bool(true)])), ("a", .string("x\"y")), ("c", .object(JSONObject())),
        ])
        #expect(JSONWriter.serialize(value) == #"{"b":[1,null,true],"a":"x\"y","c":{}}"#)
    }

    @Test func prettyOutputIsTwoSpaceIndented() {
        let value: JSONValue = .object([("a", .array([.number("1"), .null])), ("b", .object(JSONObject())), ("c", .array([]))])
        let expected = "{\n  \"a\": [\n    1,\n    null\n  ],\n  \"b\": {},\n  \"c\": []\n}"
        #expect(JSONWriter.serialize(value, pretty: true) == expected)
    }

    @Test func controlCharactersAreEscaped() {
        #expect(JSONWriter.quoted("\u{01}") == #""\u0001""#)
        #expect(JSONWriter.quoted("\u{1F}") == #""\u001f""#)
        #expect(JSONWriter.quoted("\u{0}") == #""\u0000""#)
        #expect(JSONWriter.quoted("a\nb\tc") == #""a\nb\tc""#)
        #expect(JSONWriter.quoted("é😀") == "\"é😀\"")
    }

    @Test func randomStringsSurviveQuotingAndParsing() async {
        await propertyCheck(input: Gen.latin1.string(of: 0...30), Gen.character(in: "\u{1F600}"..."\u{1F64F}").string(of: 0...3)) {
            latin, emoji in
            let text = latin + emoji + latin
            let parsed = try JSONParser.parse(JSONWriter.quoted(text))
            #expect(parsed == .string(text))
        }
    }

    @Test func excerptIsShortened() {
        let long = JSONValue.string(String(repeating: "x", count: 100))
        #expect(long.excerpt.count == 58)
        #expect(long.excerpt.hasSuffix("…"))
        #expect(JSONValue.array([.null, .null]).excerpt == "[…2 items]")
        #expect(JSONValue.string("abc").excerpt == #""abc""#)
    }

    // MARK: - DecimalText

    struct FormatCase: Sendable, CustomTestStringConvertible {
        var value: Double
        var text: String
        var testDescription: String { "\(value) → \(text)" }
    }

    static let formatCases: [FormatCase] = [
        FormatCase(value: 0, text: "0"),
        FormatCase(value: -0.0, text: "0"),
        FormatCase(value: 1.0, text: "1"),
        FormatCase(value: -1.0, text: "-1"),
        FormatCase(value: 1e-5, text: "0.00001"),
        FormatCase(value: 1e-4, text: "0.0001"),
        FormatCase(value: 0.1, text: "0.1"),
        FormatCase(value: 1e16, text: "10000000000000000"),
        FormatCase(value: 1e15, text: "1000000000000000"),
        FormatCase(value: 1.2345e20, text: "123450000000000000000"),
        FormatCase(value: 123.456, text: "123.456"),
        FormatCase(value: -2.5e-10, text: "-0.00000000025"),
        FormatCase(value: 97078.9, text: "97078.9"),
        FormatCase(value: -123.0, text: "-123"),
        FormatCase(value: 0.000123, text: "0.000123"),
        FormatCase(value: 1.5e-7, text: "0.00000015"),
        FormatCase(value: .leastNonzeroMagnitude, text: "0." + String(repeating: "0", count: 323) + "5"),
        FormatCase(value: 1.7976931348623157e308, text: "17976931348623157" + String(repeating: "0", count: 292)),
    ]

    @Test(arguments: formatCases)
    func decimalTextFormatsKnownValues(_ testCase: FormatCase) {
        #expect(DecimalText.format(testCase.value) == testCase.text)
    }

    static func expectPlainRoundTrip(_ value: Double, sourceLocation: SourceLocation = #_sourceLocation) {
        let text = DecimalText.format(value)
        // Exact comparison on purpose: the digits are the shortest round-trip representation.
        #expect(Double(text) == value, "\(value) formatted as \(text)", sourceLocation: sourceLocation)
        #expect(!text.contains("e") && !text.contains("E"), "\(value) formatted as \(text)", sourceLocation: sourceLocation)
        #expect(!text.hasSuffix(".") && !(text.contains(".") && text.hasSuffix("0")), "\(text)", sourceLocation: sourceLocation)
    }

    @Test func decimalTextRoundTripsOrdinaryMagnitudes() async {
        await propertyCheck(input: Gen.double(in: -1e12...1e12)) { value in
            Self.expectPlainRoundTrip(value)
        }
    }

    @Test func decimalTextRoundTripsEveryMagnitude() async {
        await propertyCheck(input: Gen.double(in: 1..<10), Gen.int(in: -320...300), Gen.bool()) { mantissa, exponent, negative in
            guard let value = Double("\(negative ? "-" : "")\(mantissa)e\(exponent)"), value.isFinite, value != 0 else { return }
            Self.expectPlainRoundTrip(value)
        }
    }

    // MARK: - FieldReader

    static let readerDocument: JSONValue = .object([
        ("asString", .string("1.5")),
        ("asNumber", .number("1.5")),
        ("padded", .string(" 42 ")),
        ("empty", .string("")),
        ("null", .null),
        ("word", .string("abc")),
        ("huge", .string("1e999")),
        ("hugeNumber", .number("1e999")),
        ("flag", .string("true")),
        ("whole", .number("1767115875944")),
        ("fraction", .string("2.5")),
    ])
    static let reader = FieldReader(readerDocument, path: "doc")

    @Test(arguments: ["asString", "asNumber"])
    func numbersAreReadFromStringsAndNumbers(_ key: String) throws {
        #expect(try Self.reader.required(key).double() == 1.5)
        #expect(try Self.reader.required(key).numberText() == "1.5")
    }

    @Test func spacesAroundANumericStringAreIgnored() throws {
        #expect(try Self.reader.required("padded").int64() == 42)
    }

    @Test(arguments: ["empty", "null", "missing"])
    func emptyNullAndMissingAreAbsent(_ key: String) throws {
        #expect(try Self.reader.optional(key) == nil)
        let error = #expect(throws: EngineError.self) { try Self.reader.required(key) }
        #expect(error == .missingField(path: "doc.\(key)"))
        #expect(error?.description == "doc.\(key): required field is missing or empty")
    }

    struct BadNumber: Sendable, CustomTestStringConvertible {
        var key: String
        var shownValue: String
        var reason: String
        var testDescription: String { key }
    }

    @Test(arguments: [
        BadNumber(key: "word", shownValue: #""abc""#, reason: "is not a number"),
        BadNumber(key: "huge", shownValue: #""1e999""#, reason: "is not a finite number"),
        BadNumber(key: "hugeNumber", shownValue: "1e999", reason: "is not a finite number"),
        BadNumber(key: "flag", shownValue: #""true""#, reason: "is not a number"),
    ])
    func invalidNumberIsRejectedWithItsPath(_ testCase: BadNumber) {
        let error = #expect(throws: EngineError.self) { try Self.reader.required(testCase.key).double() }
        #expect(error == .invalidField(path: "doc.\(testCase.key)", value: testCase.shownValue, reason: testCase.reason))
        #expect(error?.description.hasPrefix("doc.\(testCase.key): \(testCase.shownValue)") == true)
    }

    @Test(arguments: ["+1", "01", "0x10", "inf", "-inf", "nan", "NaN", "Infinity", "1.", ".5", "1e", "1,5", "1_000", "١٢"])
    func numericStringsFollowTheJSONNumberGrammar(_ text: String) {
        let reader = FieldReader(.object([("n", .string(text))]), path: "")
        let error = #expect(throws: EngineError.self) { try reader.required("n").double() }
        #expect(error?.description.hasPrefix("n: \(JSONWriter.quoted(text))") == true)
    }

    @Test func wholeNumbersAndRangesAreChecked() throws {
        #expect(try Self.reader.required("whole").int64() == 1_767_115_875_944)
        let fraction = #expect(throws: EngineError.self) { try Self.reader.required("fraction").int64() }
        #expect(fraction?.description.contains("doc.fraction") == true)
        let outside = #expect(throws: EngineError.self) { try Self.reader.required("fraction").double(in: 0...1) }
        #expect(outside == .invalidField(path: "doc.fraction", value: #""2.5""#, reason: "must be between 0 and 1"))
        #expect(try Self.reader.required("fraction").double(in: 0...2.5) == 2.5)
    }

    @Test func positiveDoubleRejectsZeroAndNegatives() {
        for text in ["0", "-0", "-1.5"] {
            let reader = FieldReader(.object([("x", .number(text))]), path: "p")
            let error = #expect(throws: EngineError.self) { try reader.required("x").positiveDouble() }
            #expect(error == .invalidField(path: "p.x", value: text, reason: "must be greater than 0"))
        }
    }

    @Test func booleansAndStringsAreTyped() throws {
        #expect(try Self.reader.required("flag").bool() == true)
        #expect(throws: EngineError.self) { try Self.reader.required("asString").bool() }
        #expect(try Self.reader.required("word").string() == "abc")
        let error = #expect(throws: EngineError.self) { try Self.reader.required("asNumber").string() }
        #expect(error?.description.hasPrefix("doc.asNumber: 1.5") == true)
    }

    @Test func elementsCarryIndexedPaths() throws {
        let reader = FieldReader(.object([("list", .array([.number("1"), .string("x")]))]), path: "root")
        let elements = try reader.required("list").elements()
        #expect(elements.map(\.path) == ["root.list[0]", "root.list[1]"])
        let error = #expect(throws: EngineError.self) { try elements[1].double() }
        #expect(error?.description.hasPrefix(#"root.list[1]: "x""#) == true)
    }

    @Test func rejectUnknownKeysNamesTheKey() throws {
        let reader = FieldReader(.object([("known", .number("1")), ("simPosition", .array([]))]), path: "request")
        let error = #expect(throws: EngineError.self) { try reader.rejectUnknownKeys(["known"]) }
        #expect(error == .invalidField(path: "request.simPosition", value: "", reason: "is not a known field"))
        #expect(error?.description == "request.simPosition is not a known field")
        #expect(throws: Never.self) { try reader.rejectUnknownKeys(["known", "simPosition"]) }
    }

    @Test func rejectUnknownKeysAtTheRootUsesTheBareKey() {
        let reader = FieldReader(.object([("typo", .null)]), path: "")
        let error = #expect(throws: EngineError.self) { try reader.rejectUnknownKeys([]) }
        #expect(error?.description == "typo is not a known field")
    }

    @Test func objectAccessOnANonObjectIsAnError() {
        let reader = FieldReader(.array([]), path: "market")
        let error = #expect(throws: EngineError.self) { try reader.optional("ts") }
        #expect(error == .invalidField(path: "market", value: "[…0 items]", reason: "must be an object"))
    }
}
