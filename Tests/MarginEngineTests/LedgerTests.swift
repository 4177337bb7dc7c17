import MarginEngine
import MarginTestSupport
import PropertyBased
import Testing

/// Exact decimal ledger arithmetic: exact sums, one rounding rule, per-currency scales.
@Suite struct LedgerTests {
    static func decimal(_ text: String) -> ExactDecimal {
        guard let value = ExactDecimal(text) else { preconditionFailure("bad literal \(text)") }
        return value
    }

    @Test(arguments: [
        ("0", "0"), ("-0", "0"), ("1", "1"), ("-12.345", "-12.345"), ("0.1", "0.1"), ("1e-8", "0.00000001"),
        ("2.5E3", "2500"), ("100000000000000000", "100000000000000000"), ("0.000000000000000001", "0.000000000000000001"),
        ("123.4500", "123.45"),
    ])
    func parsesAndPrintsExactly(input: String, printed: String) {
        #expect(ExactDecimal(input)?.description == printed)
    }

    @Test(arguments: ["", "abc", "1.", ".5", "+1", "NaN", "1e999", "2000000000000000000", "0x10"])
    func rejectsMalformedOrHugeText(input: String) {
        #expect(ExactDecimal(input) == nil)
    }

    /// 0.1 + 0.2 is exactly 0.3 (it is not in binary floating point).
    @Test func sumsAreExact() {
        #expect(Self.decimal("0.1") + Self.decimal("0.2") == Self.decimal("0.3"))
        var total = ExactDecimal.zero
        for _ in 0..<1_000_000 { total += Self.decimal("0.000001") }
        #expect(total == Self.decimal("1"))
    }

    /// Half-even rounding at 19+ digits when parsing and at any scale when rounding.
    @Test(arguments: [
        ("0.0000000000000000005", "0"), ("0.0000000000000000015", "0.000000000000000002"),
        ("0.00000000000000000150001", "0.000000000000000002"), ("-0.0000000000000000025", "-0.000000000000000002"),
    ])
    func parseRoundsHalfEven(input: String, expected: String) {
        #expect(ExactDecimal(input) == Self.decimal(expected))
    }

    @Test(arguments: [
        ("1.005", 2, "1"), ("1.015", 2, "1.02"), ("1.025", 2, "1.02"), ("-1.025", 2, "-1.02"), ("2.5", 0, "2"),
        ("3.5", 0, "4"), ("-3.5", 0, "-4"), ("0.123456789", 8, "0.12345679"), ("0.000000005", 8, "0"),
    ])
    func roundsHalfEvenToScale(input: String, scale: Int, expected: String) {
        #expect(Self.decimal(input).rounded(toScale: scale) == Self.decimal(expected))
    }

    @Test func multiplicationAndDivision() {
        #expect(Self.decimal("1.5").multiplied(by: Self.decimal("-2.25")) == Self.decimal("-3.375"))
        #expect(Self.decimal("1").divided(by: Self.decimal("3")) == Self.decimal("0.333333333333333333"))
        #expect(Self.decimal("2").divided(by: Self.decimal("3")) == Self.decimal("0.666666666666666667"))
        // Large operands use a full-width intermediate: 10^17 × 10^2 does not overflow.
        #expect(Self.decimal("100000000000000000").multiplied(by: Self.decimal("100")).description == "10000000000000000000")
        #expect(Self.decimal("123456789.123456789").multiplied(by: Self.decimal("0.000000001")) == Self.decimal("0.123456789123456789"))
    }

    /// Currency scales: satoshis for BTC, 6 decimals for USDT, wei for ETH.
    @Test func ledgerAmountsRoundToTheCurrencyScale() throws {
        #expect(LedgerAmount("BTC", Self.decimal("0.123456785")).amount == Self.decimal("0.12345678"))
        #expect(LedgerAmount("USDT", Self.decimal("10.0000005")).amount == Self.decimal("10"))
        #expect(LedgerAmount("ETH", Self.decimal("0.000000000000000001")).amount == Self.decimal("0.000000000000000001"))
        let sum = try LedgerAmount("USDT", Self.decimal("1.5")).adding(LedgerAmount("USDT", Self.decimal("2.25")))
        #expect(sum.amount == Self.decimal("3.75"))
        #expect(throws: LedgerError.currencyMismatch(expected: "USDT", found: "BTC")) {
            try LedgerAmount("USDT", .zero).adding(LedgerAmount("BTC", .zero))
        }
        #expect(LedgerAmount("USDT", Self.decimal("-1234.5")).riskValue == -1234.5)
    }

    /// Text → decimal → text is the identity on canonical decimals, and the Double crossing is correctly rounded.
    @Test func roundTripsThroughText() async {
        await propertyCheck(input: Gen.int(in: -1_000_000_000...1_000_000_000), Gen.int(in: 0...12)) { mantissa, exponent in
            var text = String(abs(mantissa))
            if exponent > 0 {
                text = String(repeating: "0", count: max(0, exponent + 1 - text.count)) + text
                text.insert(".", at: text.index(text.endIndex, offsetBy: -exponent))
            }
            let value = ExactDecimal((mantissa < 0 ? "-" : "") + text)
            #expect(value.map { ExactDecimal($0.description) == $0 } == true)
            #expect(value?.doubleValue == Double((mantissa < 0 ? "-" : "") + text))
        }
    }
}
