import MarginEngine
import Testing

/// The one money format for people (reasons, tables): cents, comma thousands separators.
struct MoneyTextTests {
    @Test(arguments: [
        (0.0, "0.00"), (-0.0, "0.00"), (-0.004, "0.00"), (0.005, "0.01"), (7.1, "7.10"), (999.99, "999.99"),
        (1000.0, "1,000.00"), (1234.5, "1,234.50"), (-1_234_567.891, "-1,234,567.89"), (100_000.0, "100,000.00"),
        (12_345_678_901.25, "12,345,678,901.25"),
    ])
    func dollarsAndCents(_ value: Double, _ expected: String) {
        #expect(MoneyText.usd(value) == expected)
    }

    /// Beyond cents in an Int64 a Double has no cents: grouped whole dollars.
    @Test func amountsBeyondCentsAreWholeDollars() {
        #expect(MoneyText.usd(1e16) == "10,000,000,000,000,000")
        #expect(MoneyText.usd(-2e20) == "-200,000,000,000,000,000,000")
        let huge = MoneyText.usd(-1.7e308)
        #expect(huge.hasPrefix("-170,000,") && !huge.contains("e") && !huge.contains("."))
    }

    @Test func notFinite() {
        #expect(MoneyText.usd(.nan) == "NaN")
        #expect(MoneyText.usd(.infinity) == "∞")
        #expect(MoneyText.usd(-.infinity) == "-∞")
    }
}
