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

    /// Parses a decimal literal (`"-12.345"`, `"1e-8"`, JSON number grammar, at most 400 characters). More than
    /// 18 fractional digits are rounded half-even; a magnitude above 10¹⁸ is rejected (nil).
    ///
    /// One pass over the UTF-8 bytes with no allocation: every order's size and price go through here (the
    /// string-splitting version was ~4 % of the sandbox's CPU under load).
    public init?(_ text: String) {
        var text = text
        guard let parsed = text.withUTF8({ Self.parse($0) }) else { return nil }
        self = parsed
    }

    static func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> ExactDecimal? {
        let count = bytes.count
        guard count > 0, count <= 400 else { return nil }
        @inline(__always) func isDigit(_ byte: UInt8) -> Bool { byte &- UInt8(ascii: "0") < 10 }
        var i = 0
        let negative = bytes[0] == UInt8(ascii: "-")
        if negative { i = 1 }
        // The JSON number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
        guard i < count, isDigit(bytes[i]) else { return nil }
        let integerStart = i
        if bytes[i] == UInt8(ascii: "0") { i += 1 } else { while i < count, isDigit(bytes[i]) { i += 1 } }
        let integerEnd = i
        var fractionStart = i
        var fractionEnd = i
        if i < count, bytes[i] == UInt8(ascii: ".") {
            i += 1
            guard i < count, isDigit(bytes[i]) else { return nil }
            fractionStart = i
            while i < count, isDigit(bytes[i]) { i += 1 }
            fractionEnd = i
        }
        var exponent = 0
        if i < count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            i += 1
            var exponentNegative = false
            if i < count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") {
                exponentNegative = bytes[i] == UInt8(ascii: "-")
                i += 1
            }
            guard i < count, isDigit(bytes[i]) else { return nil }
            while i < count, isDigit(bytes[i]) {
                exponent = Swift.min(exponent * 10 + Int(bytes[i] &- UInt8(ascii: "0")), 100)
                i += 1
            }
            guard exponent < 100 else { return nil }
            if exponentNegative { exponent = -exponent }
        }
        guard i == count else { return nil }

        // The significant digits: integer then fraction digits, leading zeros stripped (at least one digit kept).
        let integerDigits = integerEnd - integerStart
        let totalDigits = integerDigits + (fractionEnd - fractionStart)
        @inline(__always) func digit(_ k: Int) -> Int128 {
            Int128(bytes[k < integerDigits ? integerStart + k : fractionStart + k - integerDigits] &- UInt8(ascii: "0"))
        }
        var first = 0
        while first < totalDigits - 1, digit(first) == 0 { first += 1 }
        let significant = totalDigits - first
        var fractionCount = (fractionEnd - fractionStart) - exponent
        var zerosAfter = 0
        if fractionCount < 0 {
            zerosAfter = -fractionCount
            fractionCount = 0
        }
        // Scale to 18 fractional digits, rounding half-even when there are more.
        var keptEnd = totalDigits
        var firstDropped: Int128 = 0
        var restNonZero = false
        var keptIsZero = false
        if fractionCount > Self.fractionDigits {
            let drop = fractionCount - Self.fractionDigits
            if drop >= significant {
                keptIsZero = true
                if drop == significant { firstDropped = digit(first) }
                let restStart = drop == significant ? first + 1 : first
                for k in restStart..<totalDigits where digit(k) != 0 {
                    restNonZero = true
                    break
                }
            } else {
                keptEnd = totalDigits - drop
                firstDropped = digit(keptEnd)
                for k in (keptEnd + 1)..<totalDigits where digit(k) != 0 {
                    restNonZero = true
                    break
                }
            }
            fractionCount = Self.fractionDigits
        }
        let keptDigits = keptIsZero ? 1 : keptEnd - first
        zerosAfter += Self.fractionDigits - fractionCount
        guard keptDigits + zerosAfter <= 38 else { return nil }
        var magnitude: Int128 = 0
        if !keptIsZero { for k in first..<keptEnd { magnitude = magnitude * 10 + digit(k) } }
        for _ in 0..<zerosAfter { magnitude *= 10 }
        if firstDropped > 5 || (firstDropped == 5 && (restNonZero || magnitude % 2 == 1)) { magnitude += 1 }
        guard magnitude <= Self.inputLimit.units else { return nil }
        return ExactDecimal(units: negative ? -magnitude : magnitude)
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
    ///
    /// Most ledger values have few significant digits: written `m × 10⁻ᵉ` with `|m| < 2⁵³` and `e ≤ 18`, both `m`
    /// and `10ᵉ` are exact doubles and one IEEE division rounds their quotient correctly, the same double the
    /// text parses to (Clinger's fast path). Other values go through the text. Start-up and a funding tick convert
    /// millions of balances and positions; formatting and parsing each took ~0.25 µs.
    public var doubleValue: Double {
        let negative = units < 0
        let magnitude = negative ? -units : units
        let integerPart = magnitude / Self.one
        guard integerPart < Int128(Self.exactIntegerLimit) else { return Double(description) ?? 0 }
        var fraction = UInt64(magnitude % Self.one)
        var digits = fraction == 0 ? 0 : Self.fractionDigits
        while fraction != 0 && fraction % 10 == 0 {
            fraction /= 10
            digits -= 1
        }
        let integer = UInt64(integerPart)
        let scale = Self.powersOfTen[digits]
        // m = integer × 10^digits + fraction, checked against 2⁵³ without overflow.
        guard fraction <= Self.exactIntegerLimit, integer <= (Self.exactIntegerLimit - fraction) / scale else {
            return Double(description) ?? 0
        }
        let value = Double(integer * scale + fraction) / Double(scale)
        return negative ? -value : value
    }

    /// 2⁵³: integers below it are exact doubles.
    private static let exactIntegerLimit: UInt64 = 1 << 53
    /// 10⁰ … 10¹⁸, exact as `UInt64` and as `Double`.
    private static let powersOfTen: [UInt64] = (0...18).map { (0..<$0).reduce(1) { value, _ in value * 10 } }

    /// Plain decimal text without exponent or trailing zeros (`"-12.5"`, `"0"`).
    public var description: String {
        let negative = units < 0
        let magnitude = negative ? -units : units
        let integerPart = magnitude / Self.one
        var fraction = UInt64(magnitude % Self.one)
        let integerText = integerPart <= Int128(UInt64.max) ? String(UInt64(integerPart)) : String(integerPart)
        guard fraction != 0 else { return negative && magnitude != 0 ? "-" + integerText : integerText }
        var fractionDigits = Self.fractionDigits
        while fraction % 10 == 0 {
            fraction /= 10
            fractionDigits -= 1
        }
        let length = (negative ? 1 : 0) + integerText.utf8.count + 1 + fractionDigits
        return String(unsafeUninitializedCapacity: length) { buffer in
            var i = 0
            if negative {
                buffer[0] = UInt8(ascii: "-")
                i = 1
            }
            for byte in integerText.utf8 {
                buffer[i] = byte
                i += 1
            }
            buffer[i] = UInt8(ascii: ".")
            var position = length - 1
            for _ in 0..<fractionDigits {
                buffer[position] = UInt8(ascii: "0") + UInt8(fraction % 10)
                fraction /= 10
                position -= 1
            }
            return length
        }
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
