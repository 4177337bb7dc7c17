import Foundation
import MarginEngine
import MarginTestSupport
import Testing

/// Per-second interest above the interest-free quota, capitalised hourly and on liability changes
/// (docs/methodology/03-account.md §4).
@Suite struct InterestTests {
    static let hour: Int64 = 3_600_000
    /// 2026-01-01T00:00:00Z, an hour boundary.
    static let midnight = UnixMillis.utc(year: 2026, month: 1, day: 1)

    static func decimal(_ text: String) -> ExactDecimal { ExactDecimal(text) ?? .zero }
    static func at(minutes: Int64) -> UnixMillis { UnixMillis(midnight.rawValue + minutes * 60_000) }

    /// A liability borrowed at 00:10 and repaid at 00:40 pays for 30 minutes, billed when it changes.
    @Test func liabilityRepaidWithinTheHourPaysOnlyForItsSeconds() {
        let result = InterestAccrual.run(
            currency: "USDT", start: Self.midnight, end: Self.at(minutes: 120), cashBalance: .zero, quota: Self.decimal("20000"),
            annualRate: Self.decimal("0.1"),
            events: [
                InterestEvent(time: Self.at(minutes: 10), change: .cash(Self.decimal("-1020000"))),
                InterestEvent(time: Self.at(minutes: 40), change: .cash(Self.decimal("1020000"))),
            ])
        // 1,000,000 above the quota × 10 % × 1,800 s / 31,536,000 s.
        let expected = LedgerAmount(
            "USDT",
            Self.decimal("1000000").multiplied(by: Self.decimal("0.1"))
                .multiplied(by: Self.decimal("1800")).divided(by: Self.decimal("31536000"))
        ).amount
        #expect(result.bills.count == 1)
        #expect(result.bills.first?.time == Self.at(minutes: 40))
        #expect(result.bills.first?.reason == .liabilityChange)
        #expect(result.bills.first?.amount == expected)
        #expect(result.finalCashBalance == -expected)
        // The rounding remainder is kept, not lost: billed + pending = exact accrual.
        let exact = Self.decimal("1000000").multiplied(by: Self.decimal("0.1")).multiplied(by: Self.decimal("1800000"))
            .divided(by: Self.decimal("31536000000"))
        #expect(result.totalBilled + result.pendingInterest == exact)
    }

    @Test(arguments: ["0", "5000", "20000"])
    func nothingAccruesInsideTheQuota(liability: String) {
        let result = InterestAccrual.run(
            currency: "USDT", start: Self.midnight, end: UnixMillis(Self.midnight.rawValue + 48 * Self.hour),
            cashBalance: -Self.decimal(liability), quota: Self.decimal("20000"), annualRate: Self.decimal("0.5"), events: [])
        #expect(result.bills.isEmpty)
        #expect(result.pendingInterest == .zero)
        #expect(result.finalCashBalance == -Self.decimal(liability))
    }

    /// Bills fall on every hour boundary while the liability is outstanding; none is negative.
    @Test func billsAtEveryHourBoundary() {
        let result = InterestAccrual.run(
            currency: "BTC", start: Self.at(minutes: 30), end: Self.at(minutes: 30 + 5 * 60), cashBalance: Self.decimal("-11"),
            quota: Self.decimal("1"), annualRate: Self.decimal("0.05"), events: [])
        #expect(result.bills.map(\.time) == (1...5).map { UnixMillis(Self.midnight.rawValue + $0 * Self.hour) })
        #expect(result.bills.allSatisfy { $0.reason == .hourBoundary && $0.amount.units > 0 })
        // The first hour is half an hour long.
        let firstHalfHour = LedgerAmount(
            "BTC",
            Self.decimal("10").multiplied(by: Self.decimal("0.05"))
                .multiplied(by: Self.decimal("1800000")).divided(by: Self.decimal("31536000000"))
        ).amount
        #expect(result.bills.first?.amount == firstHalfHour)
    }

    /// Over a long horizon the hourly capitalisation compounds: excess_N = excess_0 · (1 + r/8760)^N.
    @Test(arguments: [("USDT", "0.08", 24 * 365), ("BTC", "0.02", 24 * 90), ("ETH", "0.3", 24 * 30)])
    func longHorizonAgreesWithTheClosedForm(currency: String, rate: String, hours: Int) {
        let quota = 1000.0
        let initialLiability = 51_000.0
        let result = InterestAccrual.run(
            currency: currency, start: Self.midnight, end: UnixMillis(Self.midnight.rawValue + Int64(hours) * Self.hour),
            cashBalance: -Self.decimal("51000"), quota: Self.decimal("1000"), annualRate: Self.decimal(rate), events: [])
        let r = Double(rate) ?? 0
        let closedForm = quota + (initialLiability - quota) * pow(1 + r / 8760, Double(hours))
        #expect(result.bills.count == hours)
        #expect(isClose(-result.finalCashBalance.doubleValue, closedForm, relative: 1e-9))
    }

    /// USDT's quota grows with USDC equity (and USDC's with USDT's); negative equity adds nothing.
    @Test func quotaFollowsLinkedEquity() {
        let parameters = Fixtures.parameters
        #expect(parameters.interestFreeQuota(for: "USDT", equities: ["USDC": 7_500]) == 27_500)
        #expect(parameters.interestFreeQuota(for: "USDT", equities: ["USDC": -7_500]) == 20_000)
        #expect(parameters.interestFreeQuota(for: "USDC", equities: ["USDT": 1_000]) == 6_000)
        #expect(parameters.interestFreeQuota(for: "BTC", equities: [:]) == 1)
        #expect(parameters.interestFreeQuota(for: "AVAX", equities: [:]) == 0)
        // A quota change mid-timeline: the part above the new, larger quota is all that accrues.
        let result = InterestAccrual.run(
            currency: "USDT", start: Self.midnight, end: Self.at(minutes: 60), cashBalance: -Self.decimal("30000"),
            quota: Self.decimal("20000"), annualRate: Self.decimal("0.1"),
            events: [InterestEvent(time: Self.at(minutes: 30), change: .quota(Self.decimal("27500")))])
        let expected =
            (Self.decimal("10000").multiplied(by: Self.decimal("1800000")) + Self.decimal("2500").multiplied(by: Self.decimal("1800000")))
            .multiplied(by: Self.decimal("0.1")).divided(by: Self.decimal("31536000000"))
        #expect(result.totalBilled == LedgerAmount("USDT", expected).amount)
    }

    /// The rate follows utilisation, with a kink.
    @Test(arguments: [(0.0, 0.02), (0.5, 0.06), (0.8, 0.084), (0.9, 0.184), (1.2, 0.484)])
    func rateFollowsUtilisationAcrossTheKink(utilisation: Double, expected: Double) {
        let curve = Fixtures.parameters.interestRateCurve(for: "USDT")
        #expect(isClose(curve.annualRate(utilisation: utilisation), expected, relative: 1e-12))
    }

    @Test func utilisationUsesThePoolInCoinsOrUSD() {
        let btc = Fixtures.parameters.interestRateCurve(for: "BTC")
        #expect(btc.utilisation(totalBorrowed: 500, indexUSD: 90_000) == 0.5)
        let other = Fixtures.parameters.interestRateCurve(for: "AVAX")
        #expect(isClose(other.utilisation(totalBorrowed: 40_000, indexUSD: 12.5), 0.5, relative: 1e-12))
        #expect(other.annualRate(utilisation: 0.8) > other.annualRate(utilisation: 0.7))
    }

    /// Auto-borrow on/off and the borrow limit; a refused spend changes nothing.
    @Test func spendingWithAndWithoutAutoBorrow() {
        let limit = Self.decimal("10000000")
        #expect(
            Borrowing.spend(Self.decimal("100"), from: Self.decimal("250"), autoBorrow: false, limit: limit)
                == .accepted(newBalance: Self.decimal("150"), borrowed: .zero))
        #expect(
            Borrowing.spend(Self.decimal("300"), from: Self.decimal("250"), autoBorrow: false, limit: limit)
                == .insufficientBalance(available: Self.decimal("250"), needed: Self.decimal("300")))
        #expect(
            Borrowing.spend(Self.decimal("300"), from: Self.decimal("250"), autoBorrow: true, limit: limit)
                == .accepted(newBalance: Self.decimal("-50"), borrowed: Self.decimal("50")))
        #expect(
            Borrowing.spend(Self.decimal("100"), from: Self.decimal("-50"), autoBorrow: true, limit: limit)
                == .accepted(newBalance: Self.decimal("-150"), borrowed: Self.decimal("100")))
        #expect(
            Borrowing.spend(Self.decimal("10000001"), from: .zero, autoBorrow: true, limit: limit)
                == .borrowLimitExceeded(limit: limit, wouldOwe: Self.decimal("10000001")))
        #expect(Fixtures.parameters.borrowLimit(for: "BTC", indexUSD: 90_000) == 200)
        #expect(Fixtures.parameters.borrowLimit(for: "AVAX", indexUSD: 12.5) == 80_000)
    }
}
