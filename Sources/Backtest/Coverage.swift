import MarginEngine
import Sandbox

/// The books of a population as opened on the exchange, held fixed (a "clean" backtest in the CCP sense):
/// positions at their ledger size and entry price, balances after the opening trades, each account in a mode.
public struct StaticBooks: Sendable {
    /// One entry per population account (nil: not opened).
    public var rows: [(lines: [AccountBook.Line], balances: [(currency: Int32, amount: Double)])?]
    public var level: AccountLevel

    public init(rows: [(lines: [AccountBook.Line], balances: [(currency: Int32, amount: Double)])?], level: AccountLevel) {
        self.rows = rows
        self.level = level
    }

    /// The book the kernel margins: one slot per population account (an account not opened is an empty slot,
    /// with no requirement, never counted).
    func accountBook() -> AccountBook {
        var book = AccountBook()
        for row in rows { _ = book.append(lines: row?.lines ?? [], balances: row?.balances ?? [], level: level) }
        return book
    }
}

/// One breach: an account whose loss over the horizon exceeded the maintenance requirement it held at the start.
public struct Breach: Sendable {
    /// Population index.
    public var account: Int
    public var start: UnixMillis
    public var end: UnixMillis
    /// Path instants (the files' real times) of the window.
    public var pathStart: UnixMillis
    public var lossUSD: Double
    public var mmrUSD: Double
    public var shortfallUSD: Double { lossUSD - mmrUSD }
    /// The component that set the requirement at the start (`MR1 (BTC)`, `MR7 (ETH)`, `MR8`, `classic tier rate`, …).
    public var binding: String
}

/// Coverage of one run: observations (account × window), breaches of the MMR (and of the IMR), the worst
/// shortfalls, by book kind and by binding component.
public struct CoverageResult: Sendable {
    public var observations = 0
    public var breaches = 0
    /// Windows whose loss also exceeded the initial requirement held at the start.
    public var imrBreaches = 0
    /// Windows skipped: no step exactly one horizon later (a gap in the data), or an account the kernel could not price.
    public var skippedWindows = 0
    public var worstShortfallUSD = 0.0
    /// Sum of shortfalls (USD) over all breaches.
    public var totalShortfallUSD = 0.0
    public var observationsByKind: [String: Int] = [:]
    public var breachesByKind: [String: Int] = [:]
    public var breachesByBinding: [String: Int] = [:]
    /// The largest breaches by shortfall (at most ``CoverageTracker/listed``), largest first.
    public var worst: [Breach] = []
    /// Breaches per step index of the window's start (for the report's time axis); empty in windows mode.
    public var breachesByStep: [Int] = []

    /// Adds another part's counts (windows mode scores slices of the windows apart): sums, the worse of the worst
    /// shortfalls, breaches per slot added, and the largest breaches merged as if `other`'s came after this one's.
    mutating func merge(_ other: CoverageResult) {
        observations += other.observations
        breaches += other.breaches
        imrBreaches += other.imrBreaches
        skippedWindows += other.skippedWindows
        worstShortfallUSD = max(worstShortfallUSD, other.worstShortfallUSD)
        totalShortfallUSD += other.totalShortfallUSD
        for (key, value) in other.observationsByKind { observationsByKind[key, default: 0] += value }
        for (key, value) in other.breachesByKind { breachesByKind[key, default: 0] += value }
        for (key, value) in other.breachesByBinding { breachesByBinding[key, default: 0] += value }
        for breach in other.worst { CoverageTracker.insert(breach, into: &worst) }
        if breachesByStep.count < other.breachesByStep.count {
            breachesByStep += [Int](repeating: 0, count: other.breachesByStep.count - breachesByStep.count)
        }
        for (slot, count) in other.breachesByStep.enumerated() { breachesByStep[slot] += count }
    }

    /// The share of observations covered (1 − breaches / observations); nil without observations.
    public var coverage: Double? { observations > 0 ? 1 - Double(breaches) / Double(observations) : nil }
    public var imrCoverage: Double? { observations > 0 ? 1 - Double(imrBreaches) / Double(observations) : nil }

    /// The clearing-house yardsticks (EMIR RTS 153/2013 art. 24: 99.5 % for OTC, 99 % for other instruments;
    /// CPMI-IOSCO PFMI: at least 99 %): the coverage compared with 99 % and with 99.7 %.
    public static let targets = [0.99, 0.997]
}

/// Follows one run's static books along the path: at every step the kernel margins every account; when a
/// step lies exactly one horizon after an earlier one, each account's loss over that window (adjusted equity —
/// the margin ratio's numerator — at the start minus at the end, USD) is compared with the MMR it held at the start.
///
/// Only the last horizon's worth of steps is kept (a ring of figures and tables), so memory stays
/// `O(accounts × steps per horizon)` however long the path.
struct CoverageTracker {
    static let listed = 50
    let parameters: MarginParameters
    let level: AccountLevel
    let kinds: [String]
    let horizonMilliseconds: Int64
    var book: AccountBook
    /// Accounts with something to lose (positions or balances).
    let active: [Int]

    /// One step kept for the windows that start there.
    struct Start {
        var time: UnixMillis
        var step: Int
        var pathTime: UnixMillis
        var figures: [AccountFigures?]
        var table: ScenarioVectorTable
        var market: MarketSnapshot
        var scored = false
    }

    /// The most recent steps, oldest first: the windows that may still end at a later step.
    var ring: [Start] = []
    var result = CoverageResult()
    var bindingCache: [Int: [Int: String]] = [:]

    init(books: StaticBooks, kinds: [String], parameters: MarginParameters, horizonMilliseconds: Int64, steps: Int) {
        self.parameters = parameters
        level = books.level
        self.kinds = kinds
        self.horizonMilliseconds = horizonMilliseconds
        let book = books.accountBook()
        self.book = book
        active = (0..<book.count).filter { book.positionEnd[$0] > book.positionStart[$0] || book.balanceEnd[$0] > book.balanceStart[$0] }
        result.breachesByStep = [Int](repeating: 0, count: max(steps + 1, 0))
    }

    /// Margins every account at `table` (step `step`, market time `time`) and scores the windows that end here:
    /// those that started exactly one horizon earlier. A start whose end instant the data lacks (a gap) is
    /// counted as skipped once a later step has passed it.
    mutating func observe(step: Int, time: UnixMillis, pathTime: UnixMillis, table: ScenarioVectorTable, market: MarketSnapshot) {
        let kernel = BatchMargin(table: table, parameters: parameters)
        let figures = BatchRemargin.run(book, kernel: kernel)
        let startTime = UnixMillis(time.rawValue - horizonMilliseconds)
        while let first = ring.first, first.time < startTime {
            if !first.scored { result.skippedWindows += Self.holders(first.figures, active) }
            ring.removeFirst()
        }
        if let first = ring.first, first.time == startTime {
            score(start: first, endFigures: figures, endMarket: market, end: time, slot: first.step, pathStart: first.pathTime)
            ring[0].scored = true
        }
        ring.append(Start(time: time, step: step, pathTime: pathTime, figures: figures, table: table, market: market))
    }

    /// Counts a window from `start` that could not be scored: its end instant is missing from the data (a gap).
    mutating func skip(from start: Start) { result.skippedWindows += Self.holders(start.figures, active) }

    /// The accounts among `active` that held a requirement (the ones a window would have scored).
    static func holders(_ figures: [AccountFigures?], _ active: [Int]) -> Int {
        active.reduce(0) { $0 + ((figures[$1]?.totalMmrUSD ?? 0) >= Outcomes.minimumRequirementUSD ? 1 : 0) }
    }

    /// Scores one window for every account, given the figures at its start and its end.
    mutating func score(
        start: Start, endFigures: [AccountFigures?], endMarket: MarketSnapshot, end: UnixMillis, slot: Int, pathStart: UnixMillis
    ) {
        for account in active {
            guard let before = start.figures[account], let after = endFigures[account] else {
                result.skippedWindows += 1
                continue
            }
            // An account that held no requirement (only collateral; in classic, only fully paid long options, which
            // are isolated) has nothing to cover.
            guard before.totalMmrUSD >= Outcomes.minimumRequirementUSD else { continue }
            let kind = kinds[account]
            result.observations += 1
            result.observationsByKind[kind, default: 0] += 1
            // The fall of adjusted equity, the margin ratio's numerator: what the MMR is there to absorb.
            let loss = before.adjustedEquityUSD - after.adjustedEquityUSD
            guard loss.isFinite else { continue }
            if loss > before.totalImrUSD { result.imrBreaches += 1 }
            guard loss > before.totalMmrUSD else { continue }
            result.breaches += 1
            result.breachesByKind[kind, default: 0] += 1
            if slot < result.breachesByStep.count { result.breachesByStep[slot] += 1 }
            // A loss the positions alone stay within is the collateral's: no MR component charges free collateral
            // (its discount rate is its only buffer), so the breach is named after the collateral that fell.
            let collateral = collateralLoss(account: account, table: start.table, from: start.market, to: endMarket)
            let binding =
                loss - collateral.lossUSD <= before.totalMmrUSD && collateral.lossUSD > 0
                ? "collateral (\(collateral.currency))"
                : bindingComponent(account: account, step: start.step, figures: before, table: start.table, market: start.market)
            result.breachesByBinding[binding, default: 0] += 1
            let breach = Breach(
                account: account, start: start.time, end: end, pathStart: pathStart, lossUSD: loss, mmrUSD: before.totalMmrUSD,
                binding: binding)
            result.totalShortfallUSD += breach.shortfallUSD
            result.worstShortfallUSD = max(result.worstShortfallUSD, breach.shortfallUSD)
            insertWorst(breach)
        }
    }

    /// Windows mode: every window starts from the same state (`start`) and ends at `table`; `slot` is the
    /// window's number on the report's time axis.
    mutating func scoreWindow(
        start: Start, endTable table: ScenarioVectorTable, endMarket: MarketSnapshot, end: UnixMillis, slot: Int, pathStart: UnixMillis
    ) {
        let figures = BatchRemargin.run(book, kernel: BatchMargin(table: table, parameters: parameters))
        score(start: start, endFigures: figures, endMarket: endMarket, end: end, slot: slot, pathStart: pathStart)
    }

    /// The part of an account's loss that is its cash balances' fall in value: each balance's discounted USD value
    /// (``CurrencyValuation``, the collateral tiers) at the start less at the end, and the currency that lost most.
    func collateralLoss(
        account: Int, table: ScenarioVectorTable, from start: MarketSnapshot, to end: MarketSnapshot
    ) -> (lossUSD: Double, currency: String) {
        let borrowing = BorrowingSchedule(parameters)
        var total = 0.0
        var largest = (loss: 0.0, currency: "")
        for slot in book.balanceStart[account]..<book.balanceEnd[account] {
            let currency = table.currencies[Int(book.balanceCurrency[slot])]
            guard let before = try? start.indexUSD(currency), let after = try? end.indexUSD(currency) else { continue }
            let tiers = parameters.collateralTiers[currency] ?? []
            let amount = book.balanceAmount[slot]
            let loss =
                CurrencyValuation(amount: amount, indexUSD: before, discountTiers: tiers, borrowing: borrowing).discountedEquityUSD
                - CurrencyValuation(amount: amount, indexUSD: after, discountTiers: tiers, borrowing: borrowing).discountedEquityUSD
            total += loss
            if loss > largest.loss { largest = (loss, currency) }
        }
        return (total, largest.currency)
    }

    /// The state every window of windows mode starts from.
    func start(table: ScenarioVectorTable, market: MarketSnapshot) -> Start {
        let figures = BatchRemargin.run(book, kernel: BatchMargin(table: table, parameters: parameters))
        return Start(time: market.valuationTime, step: 0, pathTime: market.valuationTime, figures: figures, table: table, market: market)
    }

    mutating func insertWorst(_ breach: Breach) { Self.insert(breach, into: &result.worst) }

    /// Keeps `worst` the ``listed`` largest breaches by shortfall, largest first; of equal ones, the first inserted.
    static func insert(_ breach: Breach, into worst: inout [Breach]) {
        if worst.count == listed, let last = worst.last, last.shortfallUSD >= breach.shortfallUSD { return }
        let position = worst.firstIndex { $0.shortfallUSD < breach.shortfallUSD } ?? worst.count
        worst.insert(breach, at: position)
        if worst.count > listed { worst.removeLast() }
    }

    /// The same tracker with nothing counted yet (a slice of windows mode starts from it).
    func emptied() -> CoverageTracker {
        var copy = self
        copy.result = CoverageResult()
        copy.result.breachesByStep = [Int](repeating: 0, count: result.breachesByStep.count)
        copy.ring = []
        copy.bindingCache = [:]
        return copy
    }

    /// The component that set the account's requirement at the window's start. Portfolio margin: the
    /// dominant component of its largest risk unit (`MR8` when borrowing outweighs every unit); classic: the
    /// larger of the perpetual/future tier rate, the short-option formula, and borrowing.
    mutating func bindingComponent(
        account: Int, step: Int, figures: AccountFigures, table: ScenarioVectorTable, market: MarketSnapshot
    ) -> String {
        if let known = bindingCache[step]?[account] { return known }
        let name = Self.binding(
            portfolio: book.portfolio(account, table: table), level: level, figures: figures, table: table, market: market,
            parameters: parameters)
        bindingCache[step, default: [:]][account] = name
        if bindingCache.count > 4 { bindingCache.removeValue(forKey: bindingCache.keys.min() ?? step) }
        return name
    }

    static func binding(
        portfolio: Portfolio, level: AccountLevel, figures: AccountFigures, table: ScenarioVectorTable, market: MarketSnapshot,
        parameters: MarginParameters
    ) -> String {
        let borrowUSD = figures.totalMmrUSD - figures.derivativesMmrUSD
        switch level {
        case .portfolioMargin:
            guard let result = try? PortfolioMargin.compute(portfolio, market: market, parameters: parameters, risks: table.risksByID)
            else {
                return "unknown"
            }
            guard let unit = result.units.max(by: { $0.components.mmr < $1.components.mmr }), unit.components.mmr >= borrowUSD else {
                return borrowUSD > 0 ? "MR8" : "none"
            }
            return unit.components.dominant.map { "\($0.rawValue) (\(unit.coin))" } ?? "none"
        case .classic:
            var linearUSD = 0.0
            var optionUSD = 0.0
            for position in portfolio.positions {
                guard let index = table.index(of: position.instrument.id.rawValue), let resolved = table.risks[Int(index)]?.market else {
                    continue
                }
                if position.instrument.kind == .option {
                    guard position.sizeContracts < 0, let margins = ClassicMargin.shortOptionMarginCoins(resolved, parameters: parameters)
                    else { continue }
                    optionUSD +=
                        ClassicMargin.optionRequirement(
                            sizeContracts: position.sizeContracts, coinsPerContract: position.instrument.coinsPerContract,
                            mmrCoins: margins.mmrCoins,
                            imrCoins: margins.imrCoins, indexUSD: resolved.indexUSD
                        ).mmrUSD
                } else {
                    let tiers = parameters.classicPositionTiers[parameters.tier(of: position.instrument.underlying)] ?? []
                    guard !tiers.isEmpty else { continue }
                    linearUSD +=
                        ClassicMargin.linearRequirement(
                            notionalUSD: abs(position.sizeContracts) * resolved.notionalUSDPerContract, tiers: tiers, requestedLeverage: 1
                        ).mmrUSD
                }
            }
            let largest = max(linearUSD, optionUSD, borrowUSD)
            if largest <= 0 { return "none" }
            if largest == linearUSD { return "classic tier rate" }
            if largest == optionUSD { return "classic short option" }
            return "MR8"
        }
    }
}
