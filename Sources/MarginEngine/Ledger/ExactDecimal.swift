/// How a ledger amount is rounded when it must lose digits. The ledger uses exactly one rule.
public enum RoundingRule: Sendable {
    /// Round half to even ("bankers' rounding"): ties go to the even neighbour, so repeated rounding does not
    /// drift in one direction.
    case halfEven
}

/// An exact signed decimal with 18 fractional digits, for ledgers (balances, fills, fees, interest).
///
/// Stored as an `Int128` count of 10⁻¹⁸ units, so sums and differences are exact; products and quotients
/// are exact to 18 fractional digits and then rounded by ``RoundingRule/halfEven``. The range is
/// ±1.7 × 10²⁰, checked when parsing (inputs are limited to ±10¹⁸); exceeding it in arithmetic is a
/// programming error. Build values from strings or integers; ``init(_:)-(Double)`` exists only for values
/// that are already shortest decimals of a parameter.
public struct ExactDecimal: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Fractional digits kept.
    public static let fractionDigits = 18
    static let one: Int128 = 1_000_000_000_000_000_000
    /// The largest magnitude accepted from text.
    public static let inputLimit = ExactDecimal(units: one * 1_000_000_000_000_000_000)

    /// The value × 10¹⁸.
    public let units: Int128

    public init(units: Int128) { self.units = units }

    public init(_ integer: Int) { units = Int128(integer) * Self.one }

    public static let zero = ExactDecimal(units: 0)

    /// Parses a decimal literal (`"-12.345"`, `"1e-8"`, JSON number grammar). More than 18 fractional digits
    /// are rounded half-even; a magnitude above 10¹⁸ is rejected (nil).
    public init?(_ text: String) {
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
        // Strip leading zeros so the digit string stays short.
        while digits.count > 1, digits.hasPrefix("0") { digits.removeFirst() }
        if fractionCount < 0 {
            digits += String(repeating: "0", count: -fractionCount)
            fractionCount = 0
        }
        // Scale to 18 fractional digits, rounding half-even when there are more.
        var kept = digits
        var dropped = ""
        if fractionCount > Self.fractionDigits {
            let drop = fractionCount - Self.fractionDigits
            if drop >= kept.count {
                dropped = String(repeating: "0", count: drop - kept.count) + kept
                kept = "0"
            } else {
                dropped = String(kept.suffix(drop))
                kept = String(kept.dropLast(drop))
            }
            fractionCount = Self.fractionDigits
        }
        kept += String(repeating: "0", count: Self.fractionDigits - fractionCount)
        guard kept.count <= 38, var magnitude = Int128(kept) else { return nil }
        if let first = dropped.first {
            let rest = dropped.dropFirst()
            let aboveHalf = first > "5" || (first == "5" && rest.contains { $0 != "0" })
            let exactlyHalf = first == "5" && !rest.contains { $0 != "0" }
            if aboveHalf || (exactlyHalf && magnitude % 2 == 1) { magnitude += 1 }
        }
        guard magnitude <= Self.inputLimit.units else { return nil }
        units = negative ? -magnitude : magnitude
    }

    /// The shortest decimal of a `Double` (as ``DecimalText`` writes it), exactly. For parameters such as
    /// rates, which are decimal numbers stored in binary.
    public init(_ value: Double) {
        precondition(value.isFinite && abs(value) < 1e18, "ExactDecimal from non-finite or huge \(value)")
        guard let parsed = ExactDecimal(DecimalText.format(value)) else { preconditionFailure("cannot represent \(value)") }
        self = parsed
    }

    public static func + (lhs: ExactDecimal, rhs: ExactDecimal) -> ExactDecimal { ExactDecimal(units: lhs.units + rhs.units) }
    public static func - (lhs: ExactDecimal, rhs: ExactDecimal) -> ExactDecimal { ExactDecimal(units: lhs.units - rhs.units) }
    public static prefix func - (value: ExactDecimal) -> ExactDecimal { ExactDecimal(units: -value.units) }
    public static func += (lhs: inout ExactDecimal, rhs: ExactDecimal) { lhs = lhs + rhs }
    public static func -= (lhs: inout ExactDecimal, rhs: ExactDecimal) { lhs = lhs - rhs }
    public static func < (lhs: ExactDecimal, rhs: ExactDecimal) -> Bool { lhs.units < rhs.units }

    /// `self × other`, exact to 18 fractional digits, rounded by `rule`.
    public func multiplied(by other: ExactDecimal, rounding rule: RoundingRule = .halfEven) -> ExactDecimal {
        let product = units.multipliedFullWidth(by: other.units)
        return ExactDecimal(units: Self.divideRounded(high: product.high, low: product.low, by: Self.one))
    }

    /// `self / other` to 18 fractional digits, rounded by `rule`. Division by zero is a programming error.
    public func divided(by other: ExactDecimal, rounding rule: RoundingRule = .halfEven) -> ExactDecimal {
        precondition(other.units != 0, "ExactDecimal division by zero")
        let scaled = units.multipliedFullWidth(by: Self.one)
        return ExactDecimal(units: Self.divideRounded(high: scaled.high, low: scaled.low, by: other.units))
    }

    /// Rounds to `scale` fractional digits (8 for BTC satoshis) by `rule`.
    public func rounded(toScale scale: Int, rule: RoundingRule = .halfEven) -> ExactDecimal {
        precondition((0...Self.fractionDigits).contains(scale), "scale \(scale) outside 0...18")
        var step: Int128 = 1
        for _ in 0..<(Self.fractionDigits - scale) { step *= 10 }
        let quotient = Self.roundedQuotient(units, step)
        return ExactDecimal(units: quotient * step)
    }

    public var magnitude: ExactDecimal { ExactDecimal(units: units < 0 ? -units : units) }
    public var isNegative: Bool { units < 0 }
    public var isZero: Bool { units == 0 }

    /// The nearest `Double` (correctly rounded from the decimal text): the one crossing to risk arithmetic.
    public var doubleValue: Double { Double(description) ?? 0 }

    /// Plain decimal text without exponent or trailing zeros (`"-12.5"`, `"0"`).
    public var description: String {
        let negative = units < 0
        let magnitude = negative ? -units : units
        let integerPart = magnitude / Self.one
        var fraction = String(magnitude % Self.one)
        fraction = String(repeating: "0", count: Self.fractionDigits - fraction.count) + fraction
        while fraction.hasSuffix("0") { fraction.removeLast() }
        let text = fraction.isEmpty ? String(integerPart) : "\(integerPart).\(fraction)"
        return negative && magnitude != 0 ? "-" + text : text
    }

    /// (high, low) / divisor, rounded half-even.
    static func divideRounded(high: Int128, low: Int128.Magnitude, by divisor: Int128) -> Int128 {
        let (quotient, remainder) = divisor.dividingFullWidth((high: high, low: low))
        return roundAway(quotient: quotient, remainder: remainder, divisor: divisor)
    }

    static func roundedQuotient(_ value: Int128, _ divisor: Int128) -> Int128 {
        let (quotient, remainder) = value.quotientAndRemainder(dividingBy: divisor)
        return roundAway(quotient: quotient, remainder: remainder, divisor: divisor)
    }

    /// Applies half-even to a truncated quotient whose remainder has the dividend's sign.
    static func roundAway(quotient: Int128, remainder: Int128, divisor: Int128) -> Int128 {
        guard remainder != 0 else { return quotient }
        let twiceRemainder = (remainder < 0 ? -remainder : remainder) * 2
        let absoluteDivisor = divisor < 0 ? -divisor : divisor
        let negative = (remainder < 0) != (divisor < 0)
        let roundsAway = twiceRemainder > absoluteDivisor || (twiceRemainder == absoluteDivisor && quotient % 2 != 0)
        guard roundsAway else { return quotient }
        return negative ? quotient - 1 : quotient + 1
    }
}

/// The number of fractional digits each currency is booked with: its smallest on-chain unit (satoshi for BTC,
/// wei for ETH), 6 for the USD stablecoins, 8 for anything else.
public enum LedgerScale {
    public static let scales: [String: Int] = [
        "USD": 2, "USDT": 6, "USDC": 6, "BTC": 8, "ETH": 18, "SOL": 9, "LTC": 8, "AVAX": 18, "XRP": 6, "DOGE": 8,
    ]
    public static let defaultScale = 8

    public static func scale(of currency: String) -> Int { scales[currency] ?? defaultScale }
}

/// An exact amount of one currency, always held at that currency's ledger scale.
public struct LedgerAmount: Hashable, Sendable, CustomStringConvertible {
    public let currency: String
    public let amount: ExactDecimal

    /// Rounds `amount` to the currency's scale (half-even).
    public init(_ currency: String, _ amount: ExactDecimal) {
        self.currency = currency
        self.amount = amount.rounded(toScale: LedgerScale.scale(of: currency))
    }

    public static func zero(_ currency: String) -> LedgerAmount { LedgerAmount(currency, .zero) }

    public func adding(_ other: LedgerAmount) throws(LedgerError) -> LedgerAmount {
        guard other.currency == currency else { throw .currencyMismatch(expected: currency, found: other.currency) }
        return LedgerAmount(currency, amount + other.amount)
    }

    /// The risk boundary: the one place a ledger amount becomes a `Double`.
    public var riskValue: Double { amount.doubleValue }

    public var description: String { "\(amount) \(currency)" }
}

/// Errors of ledger arithmetic.
public enum LedgerError: Error, Equatable, Sendable {
    /// Two amounts of different currencies were combined.
    case currencyMismatch(expected: String, found: String)
}
