import MarginEngine
import MarginTestSupport
import Testing

/// The byte-level parser and printer of `ExactDecimal` against the string-splitting implementation they
/// replaced (kept here as the oracle), on random literals, near-misses and edge cases.
@Suite struct ExactDecimalTextTests {
    /// The previous `ExactDecimal.init?(_:)`, verbatim apart from returning units.
    static func oracleParse(_ text: String) -> Int128? {
        guard NumberSyntax.isValid(text) else { return nil }
        var body = Substring(text)
        var exponent = 0
        if let e = body.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            guard let value = Int(body[body.index(after: e)...]), abs(value) < 100 else { return nil }
            exponent = value
            body = body[..<e]
        }
        let negative = body.hasPrefix("-")
        if negative { body = body.dropFirst() }
        let parts = body.split(separator: ".", omittingEmptySubsequences: false)
        var digits = String(parts[0]) + (parts.count > 1 ? String(parts[1]) : "")
        var fractionCount = (parts.count > 1 ? parts[1].count : 0) - exponent
        while digits.count > 1, digits.hasPrefix("0") { digits.removeFirst() }
        if fractionCount < 0 {
            digits += String(repeating: "0", count: -fractionCount)
            fractionCount = 0
        }
        var kept = digits
        var dropped = ""
        if fractionCount > 18 {
            let drop = fractionCount - 18
            if drop >= kept.count {
                dropped = String(repeating: "0", count: drop - kept.count) + kept
                kept = "0"
            } else {
                dropped = String(kept.suffix(drop))
                kept = String(kept.dropLast(drop))
            }
            fractionCount = 18
        }
        kept += String(repeating: "0", count: 18 - fractionCount)
        guard kept.count <= 38, var magnitude = Int128(kept) else { return nil }
        if let first = dropped.first {
            let rest = dropped.dropFirst()
            let aboveHalf = first > "5" || (first == "5" && rest.contains { $0 != "0" })
            let exactlyHalf = first == "5" && !rest.contains { $0 != "0" }
            if aboveHalf || (exactlyHalf && magnitude % 2 == 1) { magnitude += 1 }
        }
        guard magnitude <= ExactDecimal.inputLimit.units else { return nil }
        return negative ? -magnitude : magnitude
    }

    /// The previous `description`.
    static func oracleDescription(_ value: ExactDecimal) -> String {
        let one: Int128 = 1_000_000_000_000_000_000
        let negative = value.units < 0
        let magnitude = negative ? -value.units : value.units
        var fraction = String(magnitude % one)
        fraction = String(repeating: "0", count: 18 - fraction.count) + fraction
        while fraction.hasSuffix("0") { fraction.removeLast() }
        let text = fraction.isEmpty ? String(magnitude / one) : "\(magnitude / one).\(fraction)"
        return negative && magnitude != 0 ? "-" + text : text
    }

    /// A random literal: mostly well-formed numbers of every shape the parser distinguishes (leading zeros,
    /// 0–40 fraction digits, exponents up to ±120, ties at the 19th digit), sometimes with one byte changed.
    static func literal(_ random: inout SeededGenerator) -> String {
        func digits(_ count: Int, _ random: inout SeededGenerator) -> String {
            String(
                (0..<count).map { _ in
                    // Many 0s, 5s and 9s: ties, carries and runs of zeros are where rounding goes wrong.
                    let pool: [Character] = ["0", "0", "0", "5", "9", "1", "2", "3", "4", "6", "7", "8"]
                    return pool[Int.random(in: 0..<pool.count, using: &random)]
                })
        }
        var text = Bool.random(using: &random) ? "-" : ""
        let integerDigits = Int.random(in: 0...24, using: &random)
        text += integerDigits == 0 ? "0" : String("123456789".randomElement(using: &random)!) + digits(integerDigits - 1, &random)
        if Int.random(in: 0..<3, using: &random) > 0 { text += "." + digits(Int.random(in: 1...40, using: &random), &random) }
        if Int.random(in: 0..<3, using: &random) == 0 {
            text += ["e", "E"].randomElement(using: &random)! + ["", "+", "-"].randomElement(using: &random)!
            text += String(Int.random(in: 0...120, using: &random))
        }
        if Int.random(in: 0..<8, using: &random) == 0 {
            var bytes = Array(text.utf8)
            let position = Int.random(in: 0..<bytes.count, using: &random)
            bytes[position] = Array("0123456789.-+eE x0".utf8).randomElement(using: &random)!
            if Bool.random(using: &random) { bytes.insert(Array("0.e-".utf8).randomElement(using: &random)!, at: position) }
            text = String(decoding: bytes, as: UTF8.self)
        }
        return text
    }

    @Test func parserAgreesWithTheOracle() {
        var random = SeededGenerator(seed: 20_261_127)
        var accepted = 0
        for _ in 0..<60_000 {
            let text = Self.literal(&random)
            let parsed = ExactDecimal(text)
            #expect(parsed?.units == Self.oracleParse(text), "\(text)")
            if let parsed {
                accepted += 1
                #expect(parsed.description == Self.oracleDescription(parsed), "\(text)")
                #expect(ExactDecimal(parsed.description) == parsed, "\(text)")
            }
        }
        // Both branches are exercised: most literals parse, a good share are refused.
        #expect(accepted > 30_000 && accepted < 57_000)
    }

    @Test(arguments: [
        "0", "-0", "00", "0.0", "-0.000", "1e99", "1e100", "1e-99", "1e-100", "0e5", "5e-19", "15e-19", "25e-19", "5e-20",
        "0.0000000000000000005", "0.00000000000000000050000000001", "999999999999999999.9999999999999999995",
        "1000000000000000000", "1000000000000000000.0000000000000000001", "170141183460469231731.687303715884105727",
        "99999999999999999999999999999999999999", "1.", ".1", "1e", "1e+", "--1", "-", "1.2.3", "1e2e3", "١٢", "1 ", " 1",
        String(repeating: "9", count: 400), String(repeating: "9", count: 401), "0." + String(repeating: "0", count: 397) + "1",
        "1e" + String(repeating: "0", count: 397) + "5", "1e-" + String(repeating: "0", count: 300) + "18",
    ])
    func edgeLiteralsAgreeWithTheOracle(text: String) {
        #expect(ExactDecimal(text)?.units == Self.oracleParse(text))
    }

    @Test(arguments: [
        Int128(0), 1, -1, 10, 1_000_000_000_000_000_000, -1_000_000_000_000_000_001, 123_456_789_000_000_000,
        Int128(UInt64.max) * 1_000_000_000_000_000_000 + 5, -(Int128(UInt64.max) + 1) * 1_000_000_000_000_000_000,
        ExactDecimal.inputLimit.units, -ExactDecimal.inputLimit.units, Int128.max, Int128.min + 1,
    ])
    func printerAgreesWithTheOracle(units: Int128) {
        let value = ExactDecimal(units: units)
        #expect(value.description == Self.oracleDescription(value))
    }

    /// `doubleValue` (an exact fast path for values with few significant digits) is bit for bit the double the
    /// decimal text parses to, on random literals (both paths), around 2⁵³ and at the extremes.
    @Test func doubleValueIsTheParsedText() {
        var random = SeededGenerator(seed: 20_261_204)
        var checked = 0
        for _ in 0..<60_000 {
            guard let value = ExactDecimal(Self.literal(&random)) else { continue }
            checked += 1
            #expect(value.doubleValue.bitPattern == Double(value.description)?.bitPattern, "\(value)")
        }
        let limit = Int128(1) << 53
        var edges: [Int128] = [0, 1, -1, 5, 10, 1_000_000_000_000_000_000, Int128.max, Int128.min + 1]
        for integer in [limit - 1, limit, limit + 1, limit / 10, limit / 10 + 1] {
            for scale in [Int128(1), 1_000, 1_000_000_000_000_000_000] {
                edges += [integer * scale, -integer * scale, integer * scale + 1, integer * scale + 7 * scale / 10]
            }
        }
        for units in edges {
            let value = ExactDecimal(units: units)
            #expect(value.doubleValue.bitPattern == Double(value.description)?.bitPattern, "\(value)")
        }
        #expect(checked > 30_000)
    }
}
