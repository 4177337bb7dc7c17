/// An amount of US dollars, as a binary floating-point value for risk arithmetic.
///
/// Supports `+`, `-`, negation and scaling by a plain number; `USD * USD` does not compile. Ledger amounts
/// are exact decimals and never use this type.
public struct USD: Hashable, Comparable, Sendable, AdditiveArithmetic, CustomStringConvertible {
    public var value: Double

    public init(_ value: Double) { self.value = value }

    public static let zero = USD(0)

    public static func + (lhs: USD, rhs: USD) -> USD { USD(lhs.value + rhs.value) }
    public static func - (lhs: USD, rhs: USD) -> USD { USD(lhs.value - rhs.value) }
    public static prefix func - (amount: USD) -> USD { USD(-amount.value) }
    public static func * (lhs: USD, rhs: Double) -> USD { USD(lhs.value * rhs) }
    public static func * (lhs: Double, rhs: USD) -> USD { USD(lhs * rhs.value) }
    public static func / (lhs: USD, rhs: Double) -> USD { USD(lhs.value / rhs) }
    /// The ratio of two dollar amounts, a plain number.
    public static func / (lhs: USD, rhs: USD) -> Double { lhs.value / rhs.value }
    public static func < (lhs: USD, rhs: USD) -> Bool { lhs.value < rhs.value }

    public var magnitude: USD { USD(Swift.abs(value)) }
    public var description: String { DecimalText.format(value) + " USD" }
}
