/// US dollars written for people: the one money format of messages, reasons and tables.
///
/// Machine-readable output (responses, JSON) keeps ``DecimalText``'s shortest round-tripping decimals; this is
/// for text a person reads: refusal reasons, the command line's tables.
///
/// ## Naming
/// `MoneyText` pairs with ``DecimalText``: both turn a `Double` into text, one exact, one for reading.
public enum MoneyText {
    /// `value` dollars rounded to cents, with comma thousands separators and two decimals: `-12,345.68`.
    ///
    /// Rounds `value × 100` half away from zero (`Double.rounded()`); this is display of a risk figure, not a
    /// ledger amount, whose rounding is ``ExactDecimal``'s half-even. An amount that rounds to zero, negative
    /// zero included, is `0.00`. Beyond what cents in an `Int64` hold (|value| ≥ 9e15 USD, reachable only with
    /// absurd inputs such as an average price of 1e77) a `Double` carries no cents: the amount is written as
    /// grouped whole dollars without a fraction. Not finite: `NaN`, `∞` or `-∞` (the engine produces none).
    public static func usd(_ value: Double) -> String {
        guard value.isFinite else { return value.isNaN ? "NaN" : (value < 0 ? "-∞" : "∞") }
        let cents = (value * 100).rounded()
        if cents == 0 { return "0.00" }
        let sign = cents < 0 ? "-" : ""
        guard abs(cents) < 9e17 else { return sign + grouped(DecimalText.format(abs(value).rounded())) }
        let magnitude = Int64(abs(cents))
        let fraction = magnitude % 100
        return sign + grouped(String(magnitude / 100)) + (fraction < 10 ? ".0" : ".") + String(fraction)
    }

    /// Digits with a comma before every group of three from the right: `1234567` → `1,234,567`.
    static func grouped(_ digits: String) -> String {
        var rest = Substring(digits)
        var groups: [Substring] = []
        while rest.count > 3 {
            groups.append(rest.suffix(3))
            rest = rest.dropLast(3)
        }
        groups.append(rest)
        return groups.reversed().joined(separator: ",")
    }
}
