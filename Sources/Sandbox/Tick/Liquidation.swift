import Dispatch
import Foundation
import MarginEngine
import MarginStore

extension Exchange {
    /// Liquidates the accounts a re-margin found at or below the trigger. Each is re-checked first against
    /// its state now (a request may have changed it since its figures were computed) and skipped if it is
    /// no longer at the trigger. Liquidations are staged for many accounts and committed together (each
    /// account's actions in order, all or nothing), then requests may run before the next group.
    func liquidate(candidates: [Int], groupSize: Int = 512) async throws -> [String] {
        var liquidated: [String] = []
        let ordered = candidates.sorted()
        var start = 0
        while start < ordered.count {
            let group = ordered[start..<min(ordered.count, start + groupSize)]
            start = group.endIndex
            // Re-checked against the state now: requests ran since the figures were computed (and between groups).
            let due: [AccountState] = group.compactMap { slot in
                let uid = risk.uids[slot]
                guard let figures = currentFigures(uid), let ratio = figures.marginRatio, ratio <= parameters.liquidationTriggerRatio
                else { return nil }
                return accounts[uid]
            }
            guard !due.isEmpty else { continue }
            // The portfolio-margin plans over the machine's cores (the planner is a pure function of the account
            // and the market), then booked in order on this actor; nothing else runs in between.
            let plans = planLiquidations(due.map { $0.level == .portfolioMargin ? $0 : nil })
            var changes = ChangeSet()
            var modes: [String: Int] = [:]
            var steps: [String: Int] = [:]
            for (account, plan) in zip(due, plans) {
                let executed: [String]
                if account.level == .portfolioMargin {
                    guard let plan else {
                        executed = []
                        modes["portfolio", default: 0] += 1
                        liquidated.append(account.uid)
                        continue
                    }
                    var updated = account
                    try book(plan, on: &updated, changes: &changes)
                    changes.touch(updated, previous: account)
                    executed = plan.executedActions.map(\.step.rawValue)
                    modes["portfolio", default: 0] += 1
                } else {
                    executed = try stageClassicLiquidation(account, into: &changes)
                    modes["classic", default: 0] += 1
                }
                for step in executed { steps[step, default: 0] += 1 }
                liquidated.append(account.uid)
            }
            try commit(changes)
            metrics.liquidations(accounts: modes, steps: steps)
            await Task.yield()
        }
        return liquidated
    }

    /// The planner's plan for each account given (nil for a nil entry, or where the planner cannot plan), in
    /// parallel over the machine's cores; results in the order given whatever the scheduling.
    func planLiquidations(_ accounts: [AccountState?]) -> [LiquidationPlan?] {
        let portfolios = accounts.map { $0.map { (portfolio($0), $0.openOrders.count) } }
        let (catalog, market, parameters, risks) = (catalog, market, parameters, risk.risksByID)
        let plan: @Sendable (Int) -> LiquidationPlan? = { index in
            guard let (portfolio, openOrders) = portfolios[index] else { return nil }
            return try? LiquidationPlanner.plan(
                portfolio, openOrders: openOrders, catalog: catalog, market: market, parameters: parameters, risks: risks)
        }
        let workers = ProcessInfo.processInfo.activeProcessorCount
        guard workers > 1, portfolios.count > 1 else { return portfolios.indices.map(plan) }
        var plans = [LiquidationPlan?](repeating: nil, count: portfolios.count)
        plans.withUnsafeMutableBufferPointer { output in
            let base = UnsafeMutableSendablePointer(output.baseAddress)
            // Each iteration writes its own element only.
            DispatchQueue.concurrentPerform(iterations: portfolios.count) { index in base.pointer?[index] = plan(index) }
        }
        return plans
    }

    /// Books a plan's executed actions on an account: cancelled orders, fills and bills (category
    /// `partial_liquidation` or `full_liquidation`, as planned to the digit), collateral sales, deficit cover.
    func book(_ plan: LiquidationPlan, on updated: inout AccountState, changes: inout ChangeSet) throws {
        for action in plan.executedActions {
            switch action.step {
            case .cancelOrders:
                cancelAll(&updated, changes: &changes)
            case .ddh1, .ddh2, .basis, .general:
                // The planner's fills are the ledger's (TradeArithmetic on the account's exact position): booked as planned.
                for fill in action.fills {
                    guard let instrument = catalog.instrument(fill.instrumentID) else { continue }
                    let size = fill.ledger.sizeContracts.magnitude
                    guard size.units > 0 else { continue }
                    let held = updated.positions[fill.instrumentID]?.pos ?? .zero
                    let closesAll = !held.isZero && held == -fill.ledger.sizeContracts
                    try bookLiquidationFill(
                        &updated, instrument: instrument, size: size, side: fill.ledger.sizeContracts.isNegative ? .sell : .buy,
                        price: fill.ledger.price, category: closesAll ? .fullLiquidation : .partialLiquidation,
                        tag: action.step.rawValue, changes: &changes)
                }
            case .collateral:
                // The house buys the collateral sold: it receives what leaves the account less the penalty to the
                // fund, and pays the liability currency the account receives.
                var houseSide: [String: ExactDecimal] = [:]
                for (currency, change) in action.cashChanges.sorted(by: { $0.key < $1.key }) {
                    houseSide[currency, default: .zero] -= post(
                        ExactDecimal(change), currency, to: &updated, type: .liquidation, subType: BillSubType.collateralSale,
                        notes: action.reason, changes: &changes)
                }
                for (currency, penalty) in action.insuranceFundChanges.sorted(by: { $0.key < $1.key }) {
                    houseSide[currency, default: .zero] -= fund(ExactDecimal(penalty), currency, for: updated.uid, changes: &changes)
                }
                for (currency, amount) in houseSide.sorted(by: { $0.key < $1.key }) {
                    houseBooks(amount, currency, for: updated.uid, changes: &changes)
                }
            case .deficit:
                coverNegativeBalances(&updated, changes: &changes)
            }
        }
    }

    /// Classic accounts are liquidated under classic figures: open orders cancelled, then whole positions,
    /// the largest maintenance requirement first, at the slipped mark with the liquidation fee, until the
    /// classic ratio is above the stop or nothing is left. An account left with balances only and still at or
    /// below the trigger is settled like a portfolio-margin one (with no position, the two modes' figures are the
    /// same: balances, discounts and borrowing): collateral is sold into its liabilities at the penalty, and only
    /// what that cannot repay is covered by the insurance fund — never a liability while the account keeps coins.
    /// Returns the steps executed: CLASSIC for each position closed, then the planner's (COLLATERAL, DEFICIT).
    @discardableResult
    func stageClassicLiquidation(_ account: AccountState, into changes: inout ChangeSet) throws -> [String] {
        var updated = account
        var steps: [String] = []
        cancelAll(&updated, changes: &changes)
        for _ in 0..<1_000 {
            guard let classic = try? ClassicMargin.compute(portfolio(updated), market: market, parameters: parameters) else { break }
            if (classic.marginRatio ?? .infinity) > parameters.liquidationStopRatio { break }
            guard let worst = classic.positions.max(by: { $0.mmrUSD < $1.mmrUSD }),
                let instrument = catalog.instrument(worst.position.instrument.id.rawValue),
                let held = updated.positions[instrument.id.rawValue]
            else {
                if updated.positions.isEmpty,
                    let plan = try? LiquidationPlanner.plan(
                        portfolio(updated), catalog: catalog, market: market, parameters: parameters, risks: risk.risksByID),
                    plan.triggered
                {
                    try book(plan, on: &updated, changes: &changes)
                    steps += plan.executedActions.map(\.step.rawValue)
                }
                break
            }
            let tier = parameters.tier(of: instrument.underlying)
            let slippage = parameters.liquidationSlippage[tier] ?? 0
            let selling = !held.pos.isNegative
            let price = LedgerBoundary.ledger(worst.market.markPrice * (selling ? 1 - slippage : 1 + slippage))
            try bookLiquidationFill(
                &updated, instrument: instrument, size: held.pos.magnitude, side: selling ? .sell : .buy, price: price,
                category: .fullLiquidation, tag: "CLASSIC", changes: &changes)
            steps.append("CLASSIC")
        }
        changes.touch(updated, previous: account)
        return steps
    }

    /// Cancels every open order of an account (the first step of a liquidation).
    func cancelAll(_ account: inout AccountState, changes: inout ChangeSet) {
        for (ordId, order) in account.openOrders.sorted(by: { $0.key < $1.key }) {
            var cancelled = order
            cancelled.state = .canceled
            cancelled.category = .partialLiquidation
            cancelled.uTime = clock()
            account.openOrders[ordId] = nil
            changes.orders.append(cancelled)
        }
    }

    /// The insurance fund covers every negative balance of an account with no position left. The planner's
    /// deficit is the balance less the interest accrued and not yet capitalised, so that interest is billed first
    /// (to the fund, as every interest bill) and the sub-scale remainder waived; otherwise it would stay owing
    /// after the cover, a liability with no position beside it, liquidated again at every tick.
    func coverNegativeBalances(_ account: inout AccountState, changes: inout ChangeSet) {
        for (currency, pending) in account.pendingInterest.sorted(by: { $0.key < $1.key })
        where !pending.isZero && ((account.balances[currency] ?? .zero) - pending).isNegative {
            let charged = post(
                -pending, currency, to: &account, type: .interest, subType: BillSubType.interest,
                notes: "interest before the deficit cover", changes: &changes)
            account.accruedInterest[currency, default: .zero] -= charged
            fund(-charged, currency, for: account.uid, changes: &changes)
            account.pendingInterest[currency] = .zero
        }
        for (currency, balance) in account.balances.sorted(by: { $0.key < $1.key }) where balance.isNegative {
            let covered = post(
                -balance, currency, to: &account, type: .deficitCover, subType: BillSubType.deficitCover,
                notes: "deficit covered by the insurance fund",
                changes: &changes)
            fund(-covered, currency, for: account.uid, changes: &changes)
        }
    }

    /// One liquidation trade: a filled market order, its fill and bill (type 5), the fee to the fund.
    func bookLiquidationFill(
        _ account: inout AccountState, instrument: Instrument, size: ExactDecimal, side: OrderSide, price: ExactDecimal,
        category: OrderCategory,
        tag: String, changes: inout ChangeSet
    ) throws {
        let now = clock()
        let tier = parameters.tier(of: instrument.underlying)
        // Each decimal is written once and shared by the order, the fill and (through execute) the bill.
        let sizeText = size.description
        let priceText = price.description
        var order = OrderRecord(
            ordId: nextOrderID(for: account.uid), uid: account.uid, clOrdId: "", instId: instrument.id.rawValue, tdMode: .cross, side: side,
            ordType: .market,
            px: "", sz: sizeText, tgtCcy: "", reduceOnly: category == .fullLiquidation, state: .filled,
            accFillSz: sizeText, avgPx: priceText, fee: "0", feeCcy: instrument.settleCurrency, category: category,
            tag: tag, cTime: now, uTime: now)
        takeOrderID(for: account.uid)
        let trade = try execute(
            on: &account, instrument: instrument, size: side == .buy ? size : -size, price: price, maker: false,
            feeRate: parameters.liquidationFeeRate[tier] ?? 0, ordId: String(order.ordId), billType: .liquidation, changes: &changes)
        let feeText = (-trade.fee).description
        order.fee = feeText
        changes.orders.append(order)
        changes.fills.append(
            FillRecord(
                tradeId: 0, ordId: order.ordId, uid: account.uid, clOrdId: "", instId: instrument.id.rawValue, side: side,
                fillPx: priceText, fillSz: sizeText, fee: feeText, feeCcy: trade.feeCurrency,
                pnl: trade.realizedPnL.description, execType: "T", category: category, ts: now))
    }
}
