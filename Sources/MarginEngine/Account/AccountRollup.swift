/// One currency's part of the account totals (docs/methodology/03-account.md §2, §4), in USD: its value, its value
/// after the discount tiers (a liability counts at 100 %), its liability and the borrowing requirements on it.
///
/// The one place this arithmetic lives: portfolio margin, classic margin and the batch kernel all call it,
/// so their figures agree bit for bit.
public struct CurrencyValuation: Sendable, Equatable {
    public var equityUSD: Double
    public var discountedEquityUSD: Double
    public var liabilityUSD: Double
    public var borrowMmrUSD: Double
    public var borrowImrUSD: Double

    /// `amount` of a currency (its equity, in its own units) at `indexUSD`.
    /// ```
    /// equityUSD = amount × index
    /// discounted = progressive(amount, tiers) × index   when amount ≥ 0, else equityUSD
    /// liability  = −equityUSD when amount < 0;   borrowMmr/Imr = progressive(liability, bands)
    /// ```
    public init(amount: Double, indexUSD: Double, discountTiers: [ProgressiveBand], borrowing: BorrowingSchedule) {
        equityUSD = amount * indexUSD
        discountedEquityUSD = amount >= 0 ? progressiveCharge(amount, bands: discountTiers) * indexUSD : equityUSD
        liabilityUSD = amount < 0 ? -equityUSD : 0
        borrowMmrUSD = progressiveCharge(liabilityUSD, bands: borrowing.mmrBands)
        borrowImrUSD = progressiveCharge(liabilityUSD, bands: borrowing.imrBands)
    }

    public init(equityUSD: Double, discountedEquityUSD: Double, liabilityUSD: Double, borrowMmrUSD: Double, borrowImrUSD: Double) {
        self.equityUSD = equityUSD
        self.discountedEquityUSD = discountedEquityUSD
        self.liabilityUSD = liabilityUSD
        self.borrowMmrUSD = borrowMmrUSD
        self.borrowImrUSD = borrowImrUSD
    }
}

/// The borrowing MMR and IMR rates (docs/methodology/03-account.md §4) as progressive bands over a liability's USD
/// value.
public struct BorrowingSchedule: Sendable {
    public let mmrBands: [ProgressiveBand]
    public let imrBands: [ProgressiveBand]

    public init(_ parameters: MarginParameters) {
        mmrBands = parameters.borrowingBands.map { ProgressiveBand(upTo: $0.upToUSD, rate: $0.mmrRate) }
        imrBands = parameters.borrowingBands.map { ProgressiveBand(upTo: $0.upToUSD, rate: $0.imrRate) }
    }
}

/// The account figures a risk loop needs: equity, requirements and the margin ratio (no attribution).
public struct AccountFigures: Sendable, Equatable {
    public var equityUSD: Double
    public var adjustedEquityUSD: Double
    public var derivativesMmrUSD: Double
    public var derivativesImrUSD: Double
    public var borrowMmrUSD: Double
    public var borrowImrUSD: Double
    public var totalMmrUSD: Double
    public var totalImrUSD: Double
    /// nil when nothing is required.
    public var marginRatio: Double?
    /// Σ liabilities (`−eq` of currencies with negative equity) in USD: what interest accrues on.
    public var liabilityUSD: Double
    /// Whether some currency's liability exceeds the base of its interest-free quota: only then can interest
    /// accrue (a quota only grows beyond its base), so a server visits only these accounts (and those with
    /// interest pending).
    public var accruesInterest: Bool

    public init(
        equityUSD: Double, adjustedEquityUSD: Double, derivativesMmrUSD: Double, derivativesImrUSD: Double, borrowMmrUSD: Double,
        borrowImrUSD: Double, totalMmrUSD: Double, totalImrUSD: Double, marginRatio: Double?, liabilityUSD: Double = 0,
        accruesInterest: Bool = false
    ) {
        self.liabilityUSD = liabilityUSD
        self.accruesInterest = accruesInterest
        self.equityUSD = equityUSD
        self.adjustedEquityUSD = adjustedEquityUSD
        self.derivativesMmrUSD = derivativesMmrUSD
        self.derivativesImrUSD = derivativesImrUSD
        self.borrowMmrUSD = borrowMmrUSD
        self.borrowImrUSD = borrowImrUSD
        self.totalMmrUSD = totalMmrUSD
        self.totalImrUSD = totalImrUSD
        self.marginRatio = marginRatio
    }

    public static let zero = AccountFigures(
        equityUSD: 0, adjustedEquityUSD: 0, derivativesMmrUSD: 0, derivativesImrUSD: 0, borrowMmrUSD: 0, borrowImrUSD: 0,
        totalMmrUSD: 0, totalImrUSD: 0, marginRatio: nil, liabilityUSD: 0, accruesInterest: false)

    /// `adjEq − totalImr` (docs/methodology/03-account.md §3): what new orders may still use.
    public var availableEquityUSD: Double { adjustedEquityUSD - totalImrUSD }
}

/// The account roll-up (docs/methodology/03-account.md §1–§4) shared by portfolio margin, classic margin and the batch
/// kernel: currencies are added in code order, then the derivatives requirements, then
/// ```
/// totalMmr = derivMmr + borrowMmr,  totalImr = derivImr + borrowImr,  marginRatio = adjEq / totalMmr
/// ```
/// (the ratio is nil when nothing is required or the division leaves the Double range).
public struct AccountRollup: Sendable {
    public private(set) var equityUSD = 0.0
    public private(set) var adjustedEquityUSD = 0.0
    public private(set) var borrowMmrUSD = 0.0
    public private(set) var borrowImrUSD = 0.0
    public private(set) var liabilityUSD = 0.0
    public private(set) var accruesInterest = false

    public init() {}

    /// Adds one currency (call in currency-code order); `owedCoins` is its liability in its own units and
    /// `quotaBaseCoins` the base of its interest-free quota.
    public mutating func add(_ currency: CurrencyValuation, owedCoins: Double, quotaBaseCoins: Double) {
        if owedCoins > quotaBaseCoins { accruesInterest = true }
        add(currency)
    }

    /// Adds one currency (call in currency-code order).
    public mutating func add(_ currency: CurrencyValuation) {
        equityUSD += currency.equityUSD
        adjustedEquityUSD += currency.discountedEquityUSD
        borrowMmrUSD += currency.borrowMmrUSD
        borrowImrUSD += currency.borrowImrUSD
        liabilityUSD += currency.liabilityUSD
    }

    /// Adds value that counts in equity but not in adjusted equity (classic margin's isolated long options).
    public mutating func addIsolated(_ valueUSD: Double) { equityUSD += valueUSD }

    /// The account's figures with these derivatives requirements.
    public func figures(derivativesMmrUSD: Double, derivativesImrUSD: Double) -> AccountFigures {
        let totalMmr = derivativesMmrUSD + borrowMmrUSD
        return AccountFigures(
            equityUSD: equityUSD, adjustedEquityUSD: adjustedEquityUSD, derivativesMmrUSD: derivativesMmrUSD,
            derivativesImrUSD: derivativesImrUSD, borrowMmrUSD: borrowMmrUSD, borrowImrUSD: borrowImrUSD, totalMmrUSD: totalMmr,
            totalImrUSD: derivativesImrUSD + borrowImrUSD,
            marginRatio: totalMmr > 0 ? reportedRatio(adjustedEquityUSD, over: totalMmr) : nil,
            liabilityUSD: liabilityUSD, accruesInterest: accruesInterest)
    }
}
