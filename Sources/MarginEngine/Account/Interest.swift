extension InterestRateCurve {
    /// The annual rate at utilisation `u = total borrowed / lending pool`:
    /// `base + slope1·min(u, kink) + slope2·(u − kink)⁺` (docs/methodology/03-account.md §4). Negative utilisation
    /// counts as 0.
    public func annualRate(utilisation: Double) -> Double {
        let u = max(0, utilisation)
        return base + slope1 * min(u, kink) + slope2 * max(0, u - kink)
    }

    /// Utilisation of a currency whose index is `indexUSD`, for `totalBorrowed` units borrowed in total.
    public func utilisation(totalBorrowed: Double, indexUSD: Double) -> Double {
        let pool = lendingPool ?? (lendingPoolUSD ?? 1) / indexUSD
        return max(0, totalBorrowed) / pool
    }
}

extension MarginParameters {
    /// The rate curve of a currency (its own, else the default curve).
    public func interestRateCurve(for currency: String) -> InterestRateCurve {
        interestRates[currency] ?? interestRateOther
    }

    /// The interest-free quota of `currency` given every currency's equity `eq` (docs/methodology/03-account.md §4,
    /// cash plus what positions add, not cash alone): its base plus the positive equity of the currency it is linked to
    /// (USDT's quota grows with USDC equity and vice versa).
    public func interestFreeQuota(for currency: String, equities: [String: Double]) -> Double {
        guard let quota = interestFreeQuotas[currency] else { return 0 }
        let linked = quota.plusEquityOf.map { max(0, equities[$0] ?? 0) } ?? 0
        return quota.base + linked
    }

    /// The most `currency` can be borrowed, in its own units: its limit, else the USD limit at the index.
    public func borrowLimit(for currency: String, indexUSD: Double) -> Double {
        borrowLimits[currency] ?? borrowLimitOtherUSD / indexUSD
    }
}

/// One change in an interest timeline.
public struct InterestEvent: Sendable, Equatable {
    public enum Change: Sendable, Equatable {
        /// The cash balance changes by this amount (negative: more is borrowed; positive: repaid).
        case cash(ExactDecimal)
        /// The interest-free quota becomes this amount.
        case quota(ExactDecimal)
        /// The annual rate becomes this fraction.
        case annualRate(ExactDecimal)
    }

    public var time: UnixMillis
    public var change: Change

    public init(time: UnixMillis, change: Change) {
        self.time = time
        self.change = change
    }
}

/// Interest capitalised into the cash balance (an `interest` bill).
public struct InterestBill: Sendable, Equatable {
    public enum Reason: String, Sendable {
        case hourBoundary
        case liabilityChange
    }

    public var time: UnixMillis
    /// Interest charged, ≥ 0, at the currency's ledger scale.
    public var amount: ExactDecimal
    public var reason: Reason
}

/// The outcome of an interest timeline.
public struct InterestAccrualResult: Sendable, Equatable {
    public var bills: [InterestBill]
    /// The cash balance at the end, interest bills and cash events applied.
    public var finalCashBalance: ExactDecimal
    /// Interest accrued since the last bill, not yet capitalised (it already lowers equity).
    public var pendingInterest: ExactDecimal

    public var totalBilled: ExactDecimal { bills.reduce(.zero) { $0 + $1.amount } }
}

/// Per-second interest on a currency's liability (docs/methodology/03-account.md §4), a pure function of a timeline.
///
/// The liability is `−eq` when the currency's equity `eq = cashBalance + equityBeyondCash` is negative:
/// borrowed cash and unrealised losses alike (OKX's `liab` includes `uplLiab`). `equityBeyondCash` is
/// what positions add to the currency's equity (unrealised P&L, option value), held constant over the
/// timeline (the market does not move inside one tick). Interest accrues continuously on the part of
/// the liability above the interest-free quota: `accrued += (liab − quota)⁺ × r × Δt / 31,536,000 s`, with Δt in milliseconds
/// (so "per second" includes fractions). Accrual is exact to 18 decimals; it is capitalised into the cash
/// balance as an `interest` bill, rounded half-even to the currency's ledger scale, at every hour boundary
/// (UTC) and just before every cash change, so a liability repaid within the hour pays for the seconds it
/// was outstanding. The rounding remainder stays pending, so nothing is lost or created. Interest is never
/// negative and never accrues on the quota.
public enum InterestAccrual {
    static let millisecondsPerHour: Int64 = 3_600_000
    static let millisecondsPerYear = ExactDecimal(31_536_000_000)

    /// Runs the timeline from `start` to `end`. Events are applied in time order (stable for equal times);
    /// events outside `[start, end]` are ignored.
    /// `pendingInterest` is interest accrued before `start` and not yet billed.
    public static func run(
        currency: String, start: UnixMillis, end: UnixMillis, cashBalance: ExactDecimal, quota: ExactDecimal,
        annualRate: ExactDecimal, events: [InterestEvent], pendingInterest: ExactDecimal = .zero,
        equityBeyondCash: ExactDecimal = .zero
    ) -> InterestAccrualResult {
        let scale = LedgerScale.scale(of: currency)
        var cash = cashBalance
        var currentQuota = max(quota, .zero)
        var rate = max(annualRate, .zero)
        var pending = max(pendingInterest, .zero)
        var bills: [InterestBill] = []
        var now = start
        let ordered = events.enumerated()
            .filter { $0.element.time >= start && $0.element.time <= end }
            .sorted { $0.element.time != $1.element.time ? $0.element.time < $1.element.time : $0.offset < $1.offset }
            .map(\.element)
        var nextEvent = 0

        func accrue(until time: UnixMillis) {
            guard time > now else { return }
            let equity = cash + equityBeyondCash
            let liability = equity.isNegative ? -equity : .zero
            let excess = liability - currentQuota
            if excess.units > 0, rate.units > 0 {
                let elapsed = ExactDecimal(Int(time.rawValue - now.rawValue))
                pending += excess.multiplied(by: rate).multiplied(by: elapsed).divided(by: millisecondsPerYear)
            }
            now = time
        }
        func capitalise(_ reason: InterestBill.Reason) {
            let billed = pending.rounded(toScale: scale)
            guard billed.units > 0 else { return }
            bills.append(InterestBill(time: now, amount: billed, reason: reason))
            cash -= billed
            pending -= billed
        }

        while now < end || nextEvent < ordered.count {
            let hourBoundary = UnixMillis((now.rawValue / millisecondsPerHour + 1) * millisecondsPerHour)
            let eventTime = nextEvent < ordered.count ? ordered[nextEvent].time : nil
            if let eventTime, eventTime <= hourBoundary, eventTime <= end {
                accrue(until: eventTime)
                let event = ordered[nextEvent]
                nextEvent += 1
                switch event.change {
                case .cash(let delta):
                    capitalise(.liabilityChange)
                    cash += delta
                case .quota(let value): currentQuota = max(value, .zero)
                case .annualRate(let value): rate = max(value, .zero)
                }
                if eventTime == hourBoundary { capitalise(.hourBoundary) }
            } else if hourBoundary <= end {
                accrue(until: hourBoundary)
                capitalise(.hourBoundary)
            } else {
                accrue(until: end)
                break
            }
        }
        return InterestAccrualResult(bills: bills, finalCashBalance: cash, pendingInterest: pending)
    }
}

/// What a spend does to a balance under the auto-borrow setting (docs/methodology/03-account.md §4).
public enum SpendDecision: Sendable, Equatable {
    /// Accepted: the new balance, and how much of it is newly borrowed.
    case accepted(newBalance: ExactDecimal, borrowed: ExactDecimal)
    /// Refused, nothing written: auto-borrow is off and the free balance is short.
    case insufficientBalance(available: ExactDecimal, needed: ExactDecimal)
    /// Refused, nothing written: the liability would exceed the currency's borrow limit.
    case borrowLimitExceeded(limit: ExactDecimal, wouldOwe: ExactDecimal)
}

/// Borrowing rules for spending a currency.
public enum Borrowing {
    /// Spending `amount` (> 0) of a currency with `balance`: without auto-borrow only the free balance can be
    /// spent; with it the balance may go negative down to `−limit`.
    public static func spend(
        _ amount: ExactDecimal, from balance: ExactDecimal, autoBorrow: Bool, limit: ExactDecimal
    ) -> SpendDecision {
        let newBalance = balance - amount
        guard newBalance.isNegative else { return .accepted(newBalance: newBalance, borrowed: .zero) }
        guard autoBorrow else { return .insufficientBalance(available: max(balance, .zero), needed: amount) }
        guard -newBalance <= limit else { return .borrowLimitExceeded(limit: limit, wouldOwe: -newBalance) }
        let previouslyOwed = balance.isNegative ? -balance : .zero
        return .accepted(newBalance: newBalance, borrowed: -newBalance - previouslyOwed)
    }
}
