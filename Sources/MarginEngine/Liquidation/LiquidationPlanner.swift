import RealModule

/// The liquidation planner (docs/methodology/04-liquidation.md): a pure, deterministic function from an account, a
/// market and a parameter set to an ordered list of actions.
///
/// It starts when the margin ratio is at or below `liquidationTrigger` (100 %) and acts in the order
/// cancel orders → DDH1 → DDH2 → basis → general reduction → collateral → deficit, recomputing the whole
/// account after every action, and stops as soon as the ratio is above `liquidationStop` (110 %) or nothing
/// is left. An action is executed only if it raises the margin ratio; otherwise it is recorded as skipped.
/// Trades fill at the mark moved against the account by the tier's slippage and pay the tier's liquidation
/// fee on their notional, credited to the insurance fund. Reductions are sliced: the smallest number of lots
/// that brings the ratio above `stop × (1 + sliceBuffer)`, or the whole leg when that is not enough.
public enum LiquidationPlanner {
    /// An upper bound on executed actions, far above any real plan; reaching it ends the plan with a note.
    public static let maximumActions = 5_000

    /// Plans the liquidation of `portfolio`. `catalog` supplies the hedge perpetual of DDH2 when the account
    /// does not hold it; `openOrders` is the number of open orders to cancel first; `risks`, when given,
    /// supplies scenario vectors of the same market and parameters by instrument id (a server's table), so
    /// nothing is priced again.
    public static func plan(
        _ portfolio: Portfolio, openOrders: Int = 0, catalog: InstrumentCatalog, market: MarketSnapshot,
        parameters: MarginParameters, risks: [String: InstrumentRisk] = [:]
    ) throws(EngineError) -> LiquidationPlan {
        var planner = try Planner(
            portfolio: portfolio.nettedByInstrument(), catalog: catalog, market: market, parameters: parameters, risks: risks)
        let before = planner.result
        guard planner.ratio <= parameters.liquidationTriggerRatio else {
            let summary =
                before.marginRatio.map {
                    "safe: margin ratio \(percent($0)) is above the \(percent(parameters.liquidationTriggerRatio)) liquidation trigger"
                } ?? "safe: the account has no margin requirement"
            return LiquidationPlan(
                triggered: false, summary: summary, before: before, after: before, actions: [], initialPortfolio: portfolio,
                finalPortfolio: planner.portfolio, insuranceFundChanges: [:])
        }
        if openOrders > 0 {
            planner.record(
                step: .cancelOrders, status: .executed, unit: "", fills: [], ids: [], after: planner.result, portfolio: planner.portfolio,
                reason: "cancelled \(openOrders) open order(s); their reserved margin is released", fund: [:])
        }
        try planner.run()
        let after = planner.result
        let summary: String
        if planner.ratio > parameters.liquidationStopRatio {
            summary =
                after.marginRatio.map {
                    "restored: margin ratio \(percent($0)) is above the \(percent(parameters.liquidationStopRatio)) stop"
                }
                ?? "restored: nothing is required any more"
        } else if planner.executedCount >= maximumActions {
            summary = "stopped after \(maximumActions) actions with margin ratio \(percent(planner.ratio))"
        } else {
            summary = "ended with nothing left to close; margin ratio \(after.marginRatio.map(percent) ?? "n/a")"
        }
        return LiquidationPlan(
            triggered: true, summary: summary, before: before, after: after, actions: planner.actions, initialPortfolio: portfolio,
            finalPortfolio: planner.portfolio, insuranceFundChanges: planner.fund)
    }

    static func percent(_ ratio: Double) -> String {
        guard ratio.isFinite else { return "∞" }
        return DecimalText.format((ratio * 10_000).rounded() / 100) + " %"
    }
}

/// The planner's working state.
private struct Planner {
    let catalog: InstrumentCatalog
    let market: MarketSnapshot
    let parameters: MarginParameters
    var risks: [String: InstrumentRisk] = [:]
    var portfolio: Portfolio
    var result: PortfolioMarginResult
    var actions: [LiquidationAction] = []
    var fund: [String: Double] = [:]
    var executedCount = 0
    var hedgedUnits = Set<String>()
    /// Figures of candidate actions (bit for bit those of the full computation, without its attribution).
    var candidates: MarginFigures

    init(
        portfolio: Portfolio, catalog: InstrumentCatalog, market: MarketSnapshot, parameters: MarginParameters,
        risks known: [String: InstrumentRisk]
    ) throws(EngineError) {
        self.catalog = catalog
        self.market = market
        self.parameters = parameters
        self.portfolio = portfolio
        risks = known
        for position in portfolio.positions where risks[position.instrument.id.rawValue] == nil {
            let instrumentMarket = try market.market(for: position.instrument, path: position.source)
            risks[position.instrument.id.rawValue] = InstrumentRisk(instrumentMarket, parameters: parameters)
        }
        candidates = MarginFigures(market: market, parameters: parameters)
        result = try PortfolioMargin.compute(portfolio, market: market, parameters: parameters, risks: risks, context: candidates.context)
    }

    var ratio: Double { ratio(of: result) }
    var isSafe: Bool { ratio > parameters.liquidationStopRatio }
    var target: Double { parameters.liquidationStopRatio * (1 + parameters.liquidationSliceBuffer) }
    var canAct: Bool { !isSafe && executedCount < LiquidationPlanner.maximumActions }

    func ratio(of result: PortfolioMarginResult) -> Double { result.marginRatio ?? .infinity }
    func ratio(of figures: AccountFigures) -> Double { figures.marginRatio ?? .infinity }

    /// Whether `after` is safer than the current state: a higher margin ratio while equity is positive; once
    /// adjusted equity is zero or negative the ratio no longer orders states (a smaller requirement makes it
    /// more negative), so any lower total MMR counts as safer.
    func improves(_ after: AccountFigures) -> Bool {
        if result.adjustedEquityUSD > 0 { return ratio(of: after) > ratio }
        return after.totalMmrUSD < result.totalMmrUSD
    }

    /// Prices what `candidate` holds that nothing priced yet (a hedge perpetual the account did not hold).
    mutating func addRisks(_ candidate: Portfolio) throws(EngineError) {
        for position in candidate.positions where risks[position.instrument.id.rawValue] == nil {
            let instrumentMarket = try market.market(for: position.instrument, path: position.instrument.id.rawValue)
            risks[position.instrument.id.rawValue] = InstrumentRisk(instrumentMarket, parameters: parameters)
        }
    }

    /// The full result of a state the plan moves to (what an action records).
    mutating func evaluate(_ candidate: Portfolio) throws(EngineError) -> PortfolioMarginResult {
        try addRisks(candidate)
        return try PortfolioMargin.compute(candidate, market: market, parameters: parameters, risks: risks, context: candidates.context)
    }

    /// The figures of a candidate state (whether an action would raise the ratio, how large a slice must be):
    /// `evaluate(candidate).figures`, bit for bit, without the attribution.
    mutating func figures(of candidate: Portfolio) throws(EngineError) -> AccountFigures {
        try addRisks(candidate)
        return try candidates.figures(candidate, risks: risks)
    }

    /// A liquidation trade's terms for one instrument and side: the slipped mark and the tier's fee rate as the
    /// ledger takes them, and the settlement currency's index.
    struct Terms {
        let instrument: Instrument
        let buying: Bool
        let price: ExactDecimal
        let feeRate: ExactDecimal
        let settleIndexUSD: Double
    }

    func terms(_ instrument: Instrument, buying: Bool) throws(EngineError) -> Terms {
        try Self.terms(instrument, buying: buying, market: market, parameters: parameters)
    }

    static func terms(
        _ instrument: Instrument, buying: Bool, market: MarketSnapshot, parameters: MarginParameters
    ) throws(EngineError) -> Terms {
        let instrumentMarket = try market.market(for: instrument, path: instrument.id.rawValue)
        let tier = parameters.tier(of: instrument.underlying)
        let slippage = parameters.liquidationSlippage[tier] ?? 0
        let price = instrumentMarket.markPrice * (buying ? 1 + slippage : 1 - slippage)
        let settleIndexUSD = try market.indexUSD(instrument.settleCurrency)
        return Terms(
            instrument: instrument, buying: buying, price: LedgerBoundary.ledger(price),
            feeRate: ExactDecimal(parameters.liquidationFeeRate[tier] ?? 0), settleIndexUSD: settleIndexUSD)
    }

    /// Trades `contracts` (signed) of `instrument` on `base` at the slipped mark, paying the liquidation fee.
    func trade(_ base: Portfolio, _ instrument: Instrument, contracts: Double) throws(EngineError) -> (Portfolio, TradeFill) {
        Self.trade(base, try terms(instrument, buying: contracts > 0), contracts: contracts)
    }

    /// `trade(base, instrument, contracts:)` on terms already found, reused from `cache` when they are for the
    /// same instrument and side (a slice tries many sizes of one trade).
    static func trade(
        _ base: Portfolio, _ instrument: Instrument, contracts: Double, cache: inout Terms?, market: MarketSnapshot,
        parameters: MarginParameters
    ) throws(EngineError) -> (Portfolio, TradeFill) {
        let buying = contracts > 0
        if let cached = cache, cached.buying == buying, cached.instrument.id == instrument.id {
            return trade(base, cached, contracts: contracts)
        }
        let found = try terms(instrument, buying: buying, market: market, parameters: parameters)
        cache = found
        return trade(base, found, contracts: contracts)
    }

    static func trade(_ base: Portfolio, _ terms: Terms, contracts: Double) -> (Portfolio, TradeFill) {
        base.trading(
            terms.instrument, sizeContracts: contracts, price: terms.price, feeRate: terms.feeRate, settleIndexUSD: terms.settleIndexUSD)
    }

    mutating func record(
        step: LiquidationStep, status: LiquidationAction.Status, unit: String, fills: [TradeFill], ids: [String],
        after: PortfolioMarginResult, portfolio newPortfolio: Portfolio, reason: String, fund transfers: [String: Double]
    ) {
        var cash: [String: Double] = [:]
        if status == .executed {
            for currency in Set(portfolio.cashBalances.keys).union(newPortfolio.cashBalances.keys).sorted() {
                let change = (newPortfolio.cashBalances[currency] ?? 0) - (portfolio.cashBalances[currency] ?? 0)
                if change != 0 { cash[currency] = change }
            }
        }
        actions.append(
            LiquidationAction(
                step: step, status: status, riskUnit: unit, fills: status == .executed ? fills : [], instrumentIDs: ids,
                ratioBefore: result.marginRatio, ratioAfter: status == .executed ? after.marginRatio : result.marginRatio,
                mmrBeforeUSD: result.totalMmrUSD, mmrAfterUSD: status == .executed ? after.totalMmrUSD : result.totalMmrUSD,
                reason: reason, cashChanges: cash, insuranceFundChanges: status == .executed ? transfers : [:]))
        if status == .executed {
            executedCount += 1
            portfolio = newPortfolio
            result = after
            for (currency, amount) in transfers { fund[currency, default: 0] += amount }
        }
    }

    static func feeTransfers(_ fills: [TradeFill]) -> [String: Double] {
        var transfers: [String: Double] = [:]
        for fill in fills where fill.fee != 0 { transfers[fill.settleCurrency, default: 0] += fill.fee }
        return transfers
    }

    /// Tries `build(k)` for k = 1…maxLots lots: executes the smallest k whose ratio exceeds the target (by
    /// bisection), or `maxLots` when none does, provided it raises the ratio; records a skip otherwise.
    /// Returns whether an action was executed.
    mutating func slice(
        step: LiquidationStep, unit: String, ids: [String], maxLots: Int, reason: String,
        build: (Int) throws(EngineError) -> (Portfolio, [TradeFill])
    ) throws(EngineError) -> Bool {
        guard maxLots >= 1 else {
            record(
                step: step, status: .skipped, unit: unit, fills: [], ids: ids, after: result, portfolio: portfolio,
                reason: "\(reason); skipped: less than one lot to trade", fund: [:])
            return false
        }
        var chosen = try build(maxLots)
        var chosenFigures = try figures(of: chosen.0)
        guard improves(chosenFigures) else {
            record(
                step: step, status: .skipped, unit: unit, fills: [], ids: ids, after: result, portfolio: portfolio,
                reason: "\(reason); skipped: it would not raise the margin ratio", fund: [:])
            return false
        }
        if ratio(of: chosenFigures) > target, maxLots > 1 {
            var low = 0
            var high = maxLots
            while high - low > 1 {
                let middle = (low + high) / 2
                let candidate = try build(middle)
                let candidateFigures = try figures(of: candidate.0)
                if ratio(of: candidateFigures) > target {
                    high = middle
                    chosen = candidate
                    chosenFigures = candidateFigures
                } else {
                    low = middle
                }
            }
        }
        // The full result only for the size chosen: it is what the action records and what the next step reads.
        let chosenResult = try evaluate(chosen.0)
        record(
            step: step, status: .executed, unit: unit, fills: chosen.1, ids: ids, after: chosenResult, portfolio: chosen.0,
            reason: reason, fund: Self.feeTransfers(chosen.1))
        return true
    }

    /// Lots in a position, and the trade that closes k of them (the last lot closes exactly what is left).
    static func closing(_ position: Position, lots: Int) -> Double {
        let maxLots = Self.lots(position)
        if lots >= maxLots { return -position.sizeContracts }
        return -(position.sizeContracts > 0 ? 1.0 : -1.0) * Double(lots) * position.instrument.lotSize
    }

    static func lots(_ position: Position) -> Int {
        Int((abs(position.sizeContracts) / position.instrument.lotSize).rounded(.up))
    }

    func unitResult(_ coin: String) -> RiskUnitResult? { result.units.first { $0.coin == coin } }

    // MARK: - The steps

    mutating func run() throws(EngineError) {
        try ddh1()
        try ddh2()
        try basis()
        try generalReduction()
        // Collateral sales may free the way for more reductions (a close-out that fees alone made worse
        // while a liability dominated), so the two alternate until neither acts.
        while canAct {
            let before = executedCount
            try collateral()
            try generalReduction()
            if executedCount == before { break }
        }
        // Still at or below the trigger with no action that raises the ratio: the account cannot be restored
        // (fees and penalties outweigh the requirement they free). It is closed out and its collateral
        // converted regardless, so that no liquidation ends with open risk below the trigger.
        if canAct, ratio <= parameters.liquidationTriggerRatio { try forcedCloseOut() }
        try deficit()
    }

    /// Closes every position and converts collateral into liabilities without the ratio test, each action
    /// logged with a reason starting "forced".
    mutating func forcedCloseOut() throws(EngineError) {
        if !portfolio.positions.isEmpty {
            var closed = portfolio
            var fills: [TradeFill] = []
            for position in portfolio.positions.sorted(by: { $0.instrument.id < $1.instrument.id }) {
                let (next, fill) = try trade(closed, position.instrument, contracts: -position.sizeContracts)
                closed = next
                fills.append(fill)
            }
            let reason =
                "forced close-out at margin ratio \(LiquidationPlanner.percent(ratio)): no action raises the ratio "
                + "and the account is at or below the \(LiquidationPlanner.percent(parameters.liquidationTriggerRatio)) trigger"
            record(
                step: .general, status: .executed, unit: "", fills: fills, ids: fills.map(\.instrumentID),
                after: try evaluate(closed), portfolio: closed, reason: reason, fund: Self.feeTransfers(fills))
        }
        for _ in 0..<100 where canAct {
            guard let conversion = collateralConversion() else { return }
            let nextResult = try evaluate(conversion.portfolio)
            record(
                step: .collateral, status: .executed, unit: "", fills: [], ids: conversion.ids, after: nextResult,
                portfolio: conversion.portfolio, reason: "forced: " + conversion.reason, fund: conversion.fund)
        }
    }

    /// DDH1: where MR9 dominates, close equal USD delta on both legs of the most charged stablecoin pair.
    mutating func ddh1() throws(EngineError) {
        var attempted = Set<String>()
        while canAct, let unit = result.units.first(where: { $0.components.dominantScenario == .mr9 && !attempted.contains($0.coin) }) {
            attempted.insert(unit.coin)
            guard let (longLeg, shortLeg) = depegPair(unit) else {
                record(
                    step: .ddh1, status: .skipped, unit: unit.coin, fills: [], ids: [], after: result, portfolio: portfolio,
                    reason: "MR9 dominates \(unit.coin) but its stablecoin hedge has no derivative on one side (spot in use)", fund: [:])
                continue
            }
            if try pair(
                step: .ddh1, unit: unit.coin, first: longLeg, second: shortLeg, measure: { $0.cashDeltaUSD },
                reason: "reduce the \(unit.coin) cross-stablecoin hedge (MR9 dominates)")
            {
                attempted.remove(unit.coin)
            }
        }
    }

    /// The opposite-signed derivative legs of the pair with the largest MR9 charge, largest position each.
    func depegPair(_ unit: RiskUnitResult) -> (Position, Position)? {
        var byLeg: [SettlementLeg: [(Position, Double)]] = [:]
        for position in unit.positions {
            guard let risk = risks[position.position.instrument.id.rawValue] else { continue }
            byLeg[risk.leg, default: []].append((position.position, position.position.sizeContracts * risk.cashDeltaUSD))
        }
        var best: (Position, Position, Double)?
        for (first, second) in [(SettlementLeg.usdt, SettlementLeg.usd), (.usdt, .usdc), (.usdc, .usd)] {
            let total = { (leg: SettlementLeg) in byLeg[leg, default: []].reduce(0) { $0 + $1.1 } }
            let a = total(first)
            let b = total(second)
            guard a * b < 0 else { continue }
            let hedge = min(abs(a), abs(b))
            let pick = { (leg: SettlementLeg, sign: Double) in
                byLeg[leg, default: []].filter { $0.1 * sign > 0 }.max { abs($0.1) < abs($1.1) }?.0
            }
            guard let firstLeg = pick(first, a > 0 ? 1 : -1), let secondLeg = pick(second, b > 0 ? 1 : -1) else { continue }
            if hedge > (best?.2 ?? 0) { best = (firstLeg, secondLeg, hedge) }
        }
        return best.map { ($0.0, $0.1) }
    }

    /// Closes equal `measure` (USD or coin delta per contract) on two opposite legs, in slices of the smaller leg.
    mutating func pair(
        step: LiquidationStep, unit: String, first: Position, second: Position, measure: (InstrumentRisk) -> Double, reason: String
    ) throws(EngineError) -> Bool {
        guard let firstRisk = risks[first.instrument.id.rawValue], let secondRisk = risks[second.instrument.id.rawValue] else {
            return false
        }
        let firstTotal = abs(first.sizeContracts * measure(firstRisk))
        let secondTotal = abs(second.sizeContracts * measure(secondRisk))
        let (small, large, smallRisk, largeRisk) =
            firstTotal <= secondTotal
            ? (first, second, firstRisk, secondRisk) : (second, first, secondRisk, firstRisk)
        let ids = [small.instrument.id.rawValue, large.instrument.id.rawValue]
        let base = portfolio
        var smallTerms: Terms?
        var largeTerms: Terms?
        return try slice(step: step, unit: unit, ids: ids, maxLots: Self.lots(small), reason: reason) {
            [market, parameters] lots throws(EngineError) in
            let smallTrade = Self.closing(small, lots: lots)
            let matched = abs(smallTrade * measure(smallRisk) / measure(largeRisk))
            let largeLots = min(Int((matched / large.instrument.lotSize).rounded()), Self.lots(large))
            let (afterSmall, smallFill) = try Self.trade(
                base, small.instrument, contracts: smallTrade, cache: &smallTerms, market: market, parameters: parameters)
            guard largeLots > 0 else { return (afterSmall, [smallFill]) }
            let (afterBoth, largeFill) = try Self.trade(
                afterSmall, large.instrument, contracts: Self.closing(large, lots: largeLots), cache: &largeTerms, market: market,
                parameters: parameters)
            return (afterBoth, [smallFill, largeFill])
        }
    }

    /// DDH2: where an option unit's MR1 or MR6 dominates, trade the hedge perpetual to zero the unit's delta.
    mutating func ddh2() throws(EngineError) {
        for unit in result.units where canAct {
            let holdsOptions = unit.positions.contains { $0.position.instrument.kind == .option }
            guard holdsOptions, [.mr1, .mr6].contains(unit.components.dominantScenario), !hedgedUnits.contains(unit.coin) else { continue }
            hedgedUnits.insert(unit.coin)
            let hedgeID = "\(unit.coin)-\(parameters.hedgePerpetualSettleCurrency)-SWAP"
            let delta = unit.greeks.deltaBS
            let listed =
                unit.positions.first { $0.position.instrument.id.rawValue == hedgeID }?.position.instrument
                ?? catalog.instrument(hedgeID)
            guard let hedge = listed, let hedgeMarket = try? market.market(for: hedge, path: hedgeID) else {
                record(
                    step: .ddh2, status: .skipped, unit: unit.coin, fills: [], ids: [hedgeID], after: result, portfolio: portfolio,
                    reason: "the hedge perpetual \(hedgeID) is not listed or not priced", fund: [:])
                continue
            }
            let coinsPerContract = hedge.margining == .inverse ? hedge.contractValue / hedgeMarket.markPrice : hedge.contractValue
            let lots = (abs(delta) / coinsPerContract / hedge.lotSize).rounded()
            guard lots >= 1 else {
                record(
                    step: .ddh2, status: .skipped, unit: unit.coin, fills: [], ids: [hedgeID], after: result, portfolio: portfolio,
                    reason: "\(unit.coin) delta \(DecimalText.format(delta)) coins is below one lot of \(hedgeID)", fund: [:])
                continue
            }
            let contracts = (delta > 0 ? -1.0 : 1.0) * lots * hedge.lotSize
            let (hedged, fill) = try trade(portfolio, hedge, contracts: contracts)
            let hedgedResult = try evaluate(hedged)
            let reason =
                "delta-hedge \(unit.coin) (\(unit.components.dominantScenario?.rawValue ?? "") dominates, delta \(DecimalText.format(delta)) coins) with \(hedgeID)"
            let unitBefore = unit.components.mmr
            let unitAfter = hedgedResult.units.first { $0.coin == unit.coin }?.components.mmr ?? 0
            if improves(hedgedResult.figures), unitAfter < unitBefore {
                record(
                    step: .ddh2, status: .executed, unit: unit.coin, fills: [fill], ids: [hedgeID], after: hedgedResult,
                    portfolio: hedged, reason: reason, fund: Self.feeTransfers([fill]))
            } else {
                record(
                    step: .ddh2, status: .skipped, unit: unit.coin, fills: [], ids: [hedgeID], after: result, portfolio: portfolio,
                    reason: "\(reason); skipped: it would not lower the unit's MMR and raise the margin ratio", fund: [:])
            }
        }
    }

    /// Basis: close equal coin delta on opposite-side futures/perpetual legs farthest apart in tenor. A pair
    /// that cannot be reduced with profit to the ratio is set aside and the unit's next pair tried.
    mutating func basis() throws(EngineError) {
        var exhausted = Set<[String]>()
        while canAct {
            var candidate: (String, Position, Position, Double)?
            for unit in result.units {
                let legs = unit.positions.map(\.position).filter { $0.instrument.kind == .perpetual || $0.instrument.kind == .future }
                for long in legs where long.sizeContracts > 0 {
                    for short in legs where short.sizeContracts < 0 {
                        guard long.instrument.expiry != short.instrument.expiry,
                            !exhausted.contains([long.instrument.id.rawValue, short.instrument.id.rawValue])
                        else { continue }
                        let tenor = abs(tenorYears(long) - tenorYears(short))
                        if tenor > (candidate?.3 ?? -1) { candidate = (unit.coin, long, short, tenor) }
                    }
                }
            }
            guard let (coin, long, short, _) = candidate else { return }
            let executed = try pair(
                step: .basis, unit: coin, first: long, second: short, measure: { $0.coinDelta },
                reason: "close the \(coin) calendar spread \(long.instrument.id)/\(short.instrument.id) together")
            if !executed { exhausted.insert([long.instrument.id.rawValue, short.instrument.id.rawValue]) }
        }
    }

    func tenorYears(_ position: Position) -> Double {
        position.instrument.expiry.map { market.valuationTime.years(until: $0) } ?? 0
    }

    /// General reduction: most liquid first (perpetuals, futures by expiry, options short-first by expiry and
    /// moneyness), the largest MMR contributor first within a class, sliced to the stop plus a buffer.
    mutating func generalReduction() throws(EngineError) {
        var skipped = Set<String>()
        while canAct {
            let ordered = result.units.flatMap { unit in unit.positions.map { (unit.coin, $0) } }
                .filter { !skipped.contains($0.1.position.instrument.id.rawValue) }
                .sorted { liquidityOrder($0.1, $1.1) }
            guard let (coin, next) = ordered.first else {
                try closeOut()
                return
            }
            let position = next.position
            var terms: Terms?
            let executed = try slice(
                step: .general, unit: coin, ids: [position.instrument.id.rawValue], maxLots: Self.lots(position),
                reason:
                    "reduce \(position.instrument.id) (marginal MMR \(DecimalText.format((next.marginalMmrUSD * 100).rounded() / 100)) USD)"
            ) { [market, parameters, base = portfolio] lots throws(EngineError) in
                let (after, fill) = try Self.trade(
                    base, position.instrument, contracts: Self.closing(position, lots: lots), cache: &terms, market: market,
                    parameters: parameters)
                return (after, [fill])
            }
            if !executed { skipped.insert(position.instrument.id.rawValue) }
        }
    }

    /// When no single reduction raises the ratio (the remaining positions hedge one another), everything left
    /// is closed together, if that raises it.
    mutating func closeOut() throws(EngineError) {
        guard canAct, !portfolio.positions.isEmpty else { return }
        var closed = portfolio
        var fills: [TradeFill] = []
        for position in portfolio.positions.sorted(by: { $0.instrument.id < $1.instrument.id }) {
            let (next, fill) = try trade(closed, position.instrument, contracts: -position.sizeContracts)
            closed = next
            fills.append(fill)
        }
        let closedFigures = try figures(of: closed)
        let ids = fills.map(\.instrumentID)
        let reason = "close out the \(fills.count) remaining position(s) together: no single reduction raised the margin ratio"
        if improves(closedFigures) {
            let closedResult = try evaluate(closed)
            record(
                step: .general, status: .executed, unit: "", fills: fills, ids: ids, after: closedResult, portfolio: closed,
                reason: reason, fund: Self.feeTransfers(fills))
        } else {
            record(
                step: .general, status: .skipped, unit: "", fills: [], ids: ids, after: result, portfolio: portfolio,
                reason: "\(reason); skipped: it would not raise the margin ratio either", fund: [:])
        }
    }

    /// The general-reduction order (earlier = closed first).
    func liquidityOrder(_ a: PositionResult, _ b: PositionResult) -> Bool {
        func key(_ result: PositionResult) -> (Int, Int, Int64, Double, Double, String) {
            let instrument = result.position.instrument
            let classRank = instrument.kind == .perpetual ? 0 : (instrument.kind == .future ? 1 : 2)
            let shortFirst = instrument.kind == .option ? (result.position.sizeContracts < 0 ? 0 : 1) : 0
            let expiry = instrument.expiry?.rawValue ?? 0
            var moneyness = 0.0
            if let strike = instrument.id.strikeUSD, let forward = result.market.option?.forwardUSD {
                moneyness = abs(Double.log(strike / forward))
            }
            return (classRank, shortFirst, expiry, moneyness, -result.marginalMmrUSD, instrument.id.rawValue)
        }
        return key(a) < key(b)
    }

    /// Collateral: once no position can be reduced and the ratio is still at or below the stop, sell positive
    /// collateral into the largest liability, cheapest discount first, only as much as repays it, at the
    /// index less the liquidation penalty. A coin whose sale would not raise the ratio (spot in use that
    /// still hedges a position) is skipped and the next one tried. (Step 5 of docs/methodology/04-liquidation.md:
    /// it runs not only once balances alone remain but also when the positions left cannot be reduced with
    /// profit to the ratio, so that a liability is never left unpaid beside them.)
    mutating func collateral() throws(EngineError) {
        var skipped = Set<String>()
        for _ in 0..<100 where canAct {
            var sold = false
            while canAct, let conversion = collateralConversion(excluding: skipped) {
                if improves(try figures(of: conversion.portfolio)) {
                    let nextResult = try evaluate(conversion.portfolio)
                    record(
                        step: .collateral, status: .executed, unit: "", fills: [], ids: conversion.ids, after: nextResult,
                        portfolio: conversion.portfolio, reason: conversion.reason, fund: conversion.fund)
                    sold = true
                    break
                }
                record(
                    step: .collateral, status: .skipped, unit: "", fills: [], ids: conversion.ids, after: result,
                    portfolio: portfolio, reason: "\(conversion.reason); skipped: it would not raise the margin ratio", fund: [:])
                skipped.insert(conversion.ids[0])
            }
            if !sold { return }
        }
    }

    /// The discount rate of the slice of `currency`'s positive equity the next sale takes (the tier its
    /// equity reaches), 0 without a discount table.
    func marginalDiscountRate(_ currency: CurrencyResult) -> Double {
        guard let tiers = parameters.collateralTiers[currency.currency] else { return 0 }
        return tiers.first { ($0.upTo ?? .infinity) >= currency.equity }?.rate ?? tiers.last?.rate ?? 0
    }

    /// The next collateral sale: into the largest liability, the positive balance with the lowest marginal
    /// discount rate (then the larger USD value, then the code) not in `excluded`, sold at the index less
    /// the penalty `1 − rate` clamped to [minimum, maximum] (the maximum without a table), only as much as
    /// repays the liability; nil when there is no liability or nothing left to sell.
    func collateralConversion(
        excluding excluded: Set<String> = []
    ) -> (portfolio: Portfolio, ids: [String], reason: String, fund: [String: Double])? {
        let currencies = result.currencies
        guard let liability = currencies.filter({ $0.equity < 0 }).max(by: { $0.liabilityUSD < $1.liabilityUSD }) else { return nil }
        let candidates =
            currencies
            .filter { $0.cashBalance > 0 && $0.equity > 0 && !excluded.contains($0.currency) }
            .map { (currency: $0, rate: marginalDiscountRate($0)) }
            .sorted {
                if $0.rate != $1.rate { return $0.rate < $1.rate }
                if $0.currency.equityUSD != $1.currency.equityUSD { return $0.currency.equityUSD > $1.currency.equityUSD }
                return $0.currency.currency < $1.currency.currency
            }
        guard let (asset, rate) = candidates.first else { return nil }
        let penalty =
            parameters.collateralTiers[asset.currency] == nil
            ? parameters.liquidationPenaltyMaximum
            : min(max(1 - rate, parameters.liquidationPenaltyMinimum), parameters.liquidationPenaltyMaximum)
        let sellable = min(asset.equity, asset.cashBalance)
        let soldUSD = min(liability.liabilityUSD / (1 - penalty), sellable * asset.indexUSD)
        guard soldUSD > 0 else { return nil }
        let sold = min(soldUSD / asset.indexUSD, sellable)
        let repaid = soldUSD * (1 - penalty) / liability.indexUSD
        var next = portfolio
        next.cashBalances[asset.currency, default: 0] -= sold
        next.cashBalances[liability.currency, default: 0] += repaid
        let penaltyText = DecimalText.format((penalty * 10_000).rounded() / 100)
        let reason =
            "sell \(DecimalText.format(sold)) \(asset.currency) at the index less a \(penaltyText) % penalty to repay "
            + "\(DecimalText.format(repaid)) \(liability.currency)"
        return (next, [asset.currency, liability.currency], reason, [asset.currency: sold * penalty])
    }

    /// Deficit: if equity ends below zero, the insurance fund covers the liabilities, which are cleared.
    mutating func deficit() throws(EngineError) {
        guard result.equityUSD < 0, portfolio.positions.isEmpty else { return }
        var next = portfolio
        var transfers: [String: Double] = [:]
        for (currency, balance) in portfolio.cashBalances where balance < 0 {
            next.cashBalances[currency] = 0
            transfers[currency] = balance
        }
        guard !transfers.isEmpty else { return }
        let nextResult = try evaluate(next)
        record(
            step: .deficit, status: .executed, unit: "", fills: [], ids: transfers.keys.sorted(), after: nextResult, portfolio: next,
            reason:
                "equity \(DecimalText.format((result.equityUSD * 100).rounded() / 100)) USD is negative; the insurance fund covers the deficit and the liabilities are cleared",
            fund: transfers)
    }
}
