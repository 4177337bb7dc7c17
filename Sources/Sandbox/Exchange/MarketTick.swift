import GRDB
import MarginEngine
import MarginStore

/// What one market tick did, for logs and tests.
public struct TickReport: Sendable {
    public var marketTime: UnixMillis
    public var restingFills = 0
    public var fundingPayments = 0
    public var settlements = 0
    public var interestBills = 0
    public var liquidatedAccounts: [String] = []
}

extension Exchange {
    /// Moves the exchange to a new market: accrues interest and pays funding over the elapsed market time,
    /// settles what expired, fills resting orders the new marks cross, re-margins every account, updates the
    /// risk state and liquidates accounts at or below the trigger.
    ///
    /// The passage of time — interest, funding and expiry of every account, the market time and `settings`
    /// (the simulator's state that produced `newMarket`) — is one transaction: a crash or a failed write leaves
    /// all of it undone and the market where it was, so the next tick covers the interval again and nothing is
    /// paid twice or skipped. Resting fills and liquidations then commit one account at a time; they depend
    /// only on the market, and a restart runs them again on the restored market. `sequence` orders the ticks
    /// of one simulator: a tick computed before one already applied is stale (the later one includes its moves
    /// and time) and is ignored.
    @discardableResult
    public func advance(to newMarket: MarketSnapshot, settings: [String: String] = [:], sequence: UInt64? = nil) throws -> TickReport {
        if let sequence {
            guard sequence > appliedTick else { return TickReport(marketTime: market.valuationTime) }
        }
        let start = market.valuationTime
        let end = newMarket.valuationTime
        var report = TickReport(marketTime: end)
        var changes = ChangeSet()
        changes.settings = settings
        changes.settings["marketTime"] = String(end.rawValue)
        var funding: [String: (rate: Double, time: Int64)] = [:]
        if end > start {
            report.interestBills = accrueInterest(from: start, to: end, changes: &changes)
            report.fundingPayments = payFunding(from: start, to: end, at: newMarket, rates: &funding, changes: &changes)
            report.settlements = try settleExpiries(from: start, to: end, at: newMarket, changes: &changes)
        }
        try commit(changes)
        if let sequence { appliedTick = sequence }
        lastFunding.merge(funding) { _, new in new }
        market = newMarket
        report.restingFills = try fillRestingOrders()
        report.liquidatedAccounts = try riskLoop()
        emit(.market)
        return report
    }

    /// Replaces the market without the passage of time (admin "set market"), then runs the risk loop.
    @discardableResult
    public func replaceMarket(_ newMarket: MarketSnapshot) throws -> TickReport {
        market = newMarket
        var report = TickReport(marketTime: newMarket.valuationTime)
        report.restingFills = try fillRestingOrders()
        report.liquidatedAccounts = try riskLoop()
        emit(.market)
        return report
    }

    // MARK: - Resting orders

    func fillRestingOrders() throws -> Int {
        var filled = 0
        for uid in accounts.keys.sorted() {
            guard let account = accounts[uid], !account.openOrders.isEmpty else { continue }
            var updated = account
            var changes = ChangeSet()
            for (_, order) in account.openOrders.sorted(by: { $0.key < $1.key }) {
                guard let instrument = catalog.instrument(order.instId), let price = ExactDecimal(order.px),
                    let top = try? book(instrument)
                else { continue }
                let crosses = order.side == "buy" ? top.ask <= price : top.bid >= price
                guard crosses else { continue }
                var open = order
                let remaining = (ExactDecimal(order.sz) ?? .zero) - (ExactDecimal(order.accFillSz) ?? .zero)
                try fill(&open, of: &updated, instrument: instrument, size: remaining, price: price, maker: true, category: "normal",
                    changes: &changes)
                changes.orders.append(open)
                filled += 1
            }
            if !changes.orders.isEmpty {
                changes.touch(updated, previous: account)
                try commit(changes)
            }
        }
        return filled
    }

    // MARK: - Interest

    /// What each account's positions add to its currencies' equity at the current market (unrealised P&L,
    /// option value), so that interest is charged on the liability `−eq`, unrealised losses included.
    func positionEquity(_ account: AccountState) -> [String: Double] {
        guard !account.positions.isEmpty else { return [:] }
        return (try? AccountEquity.positionEquity(portfolio(account).positions, market: market)) ?? [:]
    }

    /// Per-second interest on every liability (`−eq`: borrowed cash and unrealised losses) above its quota,
    /// capitalised hourly (spec 03 §4).
    func accrueInterest(from start: UnixMillis, to end: UnixMillis, changes: inout ChangeSet) -> Int {
        var borrowed: [String: Double] = [:]
        var beyondCash: [String: [String: Double]] = [:]
        for uid in accounts.keys.sorted() {
            guard let account = accounts[uid] else { continue }
            let beyond = positionEquity(account)
            if !beyond.isEmpty { beyondCash[uid] = beyond }
            for currency in Set(account.balances.keys).union(beyond.keys) {
                let equity = (account.balances[currency]?.doubleValue ?? 0) + (beyond[currency] ?? 0)
                if equity < 0 { borrowed[currency, default: 0] -= equity }
            }
        }
        var bills = 0
        for uid in accounts.keys.sorted() {
            guard let account = changes.current(uid, in: accounts) else { continue }
            let beyond = beyondCash[uid] ?? [:]
            var equities: [String: Double] = [:]
            for currency in Set(account.balances.keys).union(beyond.keys) {
                equities[currency] = (account.balances[currency]?.doubleValue ?? 0) + (beyond[currency] ?? 0)
            }
            let debts = equities.keys.filter { (equities[$0] ?? 0) < 0 || !(account.pendingInterest[$0] ?? .zero).isZero }
            guard !debts.isEmpty else { continue }
            var updated = account
            for currency in debts.sorted() {
                guard let index = try? market.indexUSD(currency) else { continue }
                let curve = parameters.interestRateCurve(for: currency)
                let rate = curve.annualRate(utilisation: curve.utilisation(totalBorrowed: borrowed[currency] ?? 0, indexUSD: index))
                let quota = parameters.interestFreeQuota(for: currency, equities: equities)
                let result = InterestAccrual.run(
                    currency: currency, start: start, end: end, cashBalance: account.balances[currency] ?? .zero, quota: ExactDecimal(quota),
                    annualRate: ExactDecimal(rate), events: [], pendingInterest: account.pendingInterest[currency] ?? .zero,
                    equityBeyondCash: ExactDecimal(beyond[currency] ?? 0))
                for bill in result.bills {
                    let charged = post(-bill.amount, currency, to: &updated, type: "7", subType: "9", notes: "interest \(bill.reason.rawValue)",
                        changes: &changes)
                    updated.accruedInterest[currency, default: .zero] += bill.amount
                    fund(-charged, currency, changes: &changes)
                    bills += 1
                }
                updated.pendingInterest[currency] = result.pendingInterest
            }
            changes.touch(updated, previous: account)
        }
        return bills
    }

    // MARK: - Funding

    /// The funding rate of a perpetual: its premium over the index plus a clamped 0.01 % interest term,
    /// capped at ±0.75 % per 8 hours.
    func fundingRate(_ instrument: Instrument, in snapshot: MarketSnapshot) -> Double? {
        // A snapshot taken from an exchange carries the rate it published (`pm market snapshot`).
        if let published = snapshot.marks[instrument.id.rawValue]?.fundingRate { return published }
        guard let resolved = try? snapshot.market(for: instrument, path: "") else { return nil }
        let premium = (resolved.markPrice - resolved.quoteIndex) / resolved.quoteIndex
        return min(max(premium + min(max(0.0001 - premium, -0.0005), 0.0005), -0.0075), 0.0075)
    }

    /// Funding at every funding hour (00:00, 08:00, 16:00 UTC) crossed in `(start, end]`.
    func payFunding(
        from start: UnixMillis, to end: UnixMillis, at snapshot: MarketSnapshot, rates: inout [String: (rate: Double, time: Int64)],
        changes: inout ChangeSet
    ) -> Int {
        let hour: Int64 = 3_600_000
        var instants: [Int64] = []
        var time = (start.rawValue / hour + 1) * hour
        while time <= end.rawValue {
            if parameters.fundingHoursUTC.contains(Int(time / hour % 24)) { instants.append(time) }
            time += hour
        }
        guard !instants.isEmpty else { return 0 }
        var payments = 0
        for instant in instants {
            for uid in accounts.keys.sorted() {
                guard let account = changes.current(uid, in: accounts) else { continue }
                var updated = account
                var paid = 0
                for (id, position) in account.positions.sorted(by: { $0.key < $1.key }) {
                    guard let instrument = catalog.instrument(id), instrument.kind == .perpetual,
                        let rate = fundingRate(instrument, in: snapshot), let resolved = try? snapshot.market(for: instrument, path: "")
                    else { continue }
                    rates[id] = (rate, instant)
                    let mark = ExactDecimal(resolved.markPrice)
                    let exactRate = ExactDecimal(rate)
                    let value = instrument.margining == .inverse
                        ? position.pos.multiplied(by: ExactDecimal(instrument.contractValue)).divided(by: mark)
                        : position.pos.multiplied(by: ExactDecimal(instrument.contractValue)).multiplied(by: mark)
                    let payment = -value.multiplied(by: exactRate)
                    let posted = post(payment, instrument.settleCurrency, to: &updated, type: "8", subType: payment.isNegative ? "174" : "173",
                        instId: id, px: mark.description, notes: "funding rate \(DecimalText.format(rate))", changes: &changes)
                    // The house is the other side of every position: it pays what the account receives.
                    houseBooks(-posted, instrument.settleCurrency, changes: &changes)
                    payments += 1
                    paid += 1
                }
                if paid > 0 { changes.touch(updated, previous: account) }
            }
        }
        return payments
    }

    // MARK: - Expiry

    /// Settles futures and options that expired in `(start, end]` against the index (delivery bills), and
    /// cancels their open orders.
    func settleExpiries(from start: UnixMillis, to end: UnixMillis, at snapshot: MarketSnapshot, changes: inout ChangeSet) throws -> Int {
        var settled = 0
        for uid in accounts.keys.sorted() {
            guard let account = changes.current(uid, in: accounts) else { continue }
            var updated = account
            var touched = false
            for (ordId, order) in account.openOrders.sorted(by: { $0.key < $1.key }) {
                guard let instrument = catalog.instrument(order.instId), let expiry = instrument.expiry, expiry <= end else { continue }
                var cancelled = order
                cancelled.state = "canceled"
                cancelled.uTime = clock()
                updated.openOrders[ordId] = nil
                changes.orders.append(cancelled)
                touched = true
            }
            for (id, position) in account.positions.sorted(by: { $0.key < $1.key }) {
                guard let instrument = catalog.instrument(id), let expiry = instrument.expiry, expiry > start, expiry <= end,
                    let index = try? snapshot.index(base: instrument.underlying, quote: instrument.margining == .linear ? instrument.quoteCurrency : "USD")
                else { continue }
                let settlement = ExactDecimal(index)
                if instrument.kind == .option, let strike = instrument.id.strikeUSD, let kind = instrument.id.optionKind {
                    let intrinsic = max(kind == .call ? index - strike : strike - index, 0) / index
                    let payout = position.pos.multiplied(by: ExactDecimal(instrument.coinsPerContract)).multiplied(by: ExactDecimal(intrinsic))
                    let paid = post(payout, instrument.settleCurrency, to: &updated, type: "3", subType: "13", instId: id, pnl: payout,
                        sz: position.pos.magnitude.description, px: settlement.description,
                        notes: payout.isZero ? "option expired worthless" : "option exercise at expiry", always: true, changes: &changes)
                    houseBooks(-paid, instrument.settleCurrency, changes: &changes)
                    updated.positions[id] = nil
                } else {
                    try execute(on: &updated, instrument: instrument, size: -position.pos, price: settlement, maker: false, feeRate: 0,
                        ordId: "", billType: "3", changes: &changes)
                }
                settled += 1
                touched = true
            }
            if touched { changes.touch(updated, previous: account) }
        }
        return settled
    }

    // MARK: - Risk loop and liquidation

    /// Re-margins every account with positions or liabilities, records its risk state, warns at or below the
    /// warning ratio, and liquidates at or below the trigger. Returns the liquidated accounts.
    func riskLoop() throws -> [String] {
        var liquidated: [String] = []
        for uid in accounts.keys.sorted() {
            guard let account = accounts[uid] else { continue }
            let hasRisk = !account.positions.isEmpty || account.balances.values.contains { $0.isNegative }
            guard hasRisk else {
                riskState[uid] = (nil, false, clock())
                continue
            }
            guard let figures = try? ModeFigures.compute(portfolio(account), level: account.level, market: market, parameters: parameters) else {
                continue
            }
            let ratio = figures.marginRatio
            riskState[uid] = (ratio, (ratio ?? .infinity) <= parameters.warningRatio, clock())
            if let ratio, ratio <= parameters.warningRatio { emit(.liquidationWarning(uid: uid, marginRatio: ratio)) }
            if let ratio, ratio <= parameters.liquidationTriggerRatio {
                if account.level == .portfolioMargin { try liquidate(uid) } else { try liquidateClassic(uid) }
                liquidated.append(uid)
                if let after = accounts[uid],
                    let figures = try? ModeFigures.compute(portfolio(after), level: after.level, market: market, parameters: parameters) {
                    riskState[uid] = (figures.marginRatio, (figures.marginRatio ?? .infinity) <= parameters.warningRatio, clock())
                }
            }
        }
        return liquidated
    }

    /// Classic accounts are liquidated under classic figures: whole positions, the largest maintenance
    /// requirement first, at the slipped mark with the liquidation fee, until the classic ratio is above the
    /// stop or nothing is left; then any negative equity is covered by the insurance fund.
    func liquidateClassic(_ uid: String) throws {
        for _ in 0..<1_000 {
            guard var account = accounts[uid] else { return }
            guard let classic = try? ClassicMargin.compute(portfolio(account), market: market, parameters: parameters) else { return }
            if (classic.marginRatio ?? .infinity) > parameters.liquidationStopRatio { return }
            var changes = ChangeSet()
            let before = account
            if !account.openOrders.isEmpty {
                for (ordId, order) in account.openOrders.sorted(by: { $0.key < $1.key }) {
                    var cancelled = order
                    cancelled.state = "canceled"
                    cancelled.category = "partial_liquidation"
                    cancelled.uTime = clock()
                    account.openOrders[ordId] = nil
                    changes.orders.append(cancelled)
                }
                changes.touch(account, previous: before)
                try commit(changes)
                continue
            }
            guard let worst = classic.positions.max(by: { $0.mmrUSD < $1.mmrUSD }),
                let instrument = catalog.instrument(worst.position.instrument.id.rawValue),
                let held = account.positions[instrument.id.rawValue]
            else {
                try coverDeficit(uid)
                return
            }
            let tier = parameters.tier(of: instrument.underlying)
            let slippage = parameters.liquidationSlippage[tier] ?? 0
            let selling = !held.pos.isNegative
            let price = ExactDecimal(worst.market.markPrice * (selling ? 1 - slippage : 1 + slippage))
            try bookLiquidationFill(
                &account, instrument: instrument, size: held.pos.magnitude, side: selling ? "sell" : "buy", price: price,
                category: "full_liquidation", tag: "CLASSIC", changes: &changes)
            changes.touch(account, previous: before)
            try commit(changes)
        }
    }

    /// Covers negative balances of an account with no position left from the insurance fund.
    func coverDeficit(_ uid: String) throws {
        guard var account = accounts[uid], account.positions.isEmpty else { return }
        guard let figures = try? ModeFigures.compute(portfolio(account), level: account.level, market: market, parameters: parameters),
            figures.netEquityUSD < 0
        else { return }
        let before = account
        var changes = ChangeSet()
        for (currency, balance) in account.balances.sorted(by: { $0.key < $1.key }) where balance.isNegative {
            let covered = post(-balance, currency, to: &account, type: "102", subType: "1", notes: "deficit covered by the insurance fund",
                changes: &changes)
            fund(-covered, currency, changes: &changes)
        }
        changes.touch(account, previous: before)
        try commit(changes)
    }

    /// One liquidation trade: a filled market order, its fill and bill (type 5), the fee to the fund.
    func bookLiquidationFill(
        _ account: inout AccountState, instrument: Instrument, size: ExactDecimal, side: String, price: ExactDecimal, category: String,
        tag: String, changes: inout ChangeSet
    ) throws {
        let now = clock()
        let tier = parameters.tier(of: instrument.underlying)
        var order = OrderRecord(
            ordId: nextOrderID, uid: account.uid, clOrdId: "", instId: instrument.id.rawValue, tdMode: "cross", side: side, ordType: "market",
            px: "", sz: size.description, tgtCcy: "", reduceOnly: category == "full_liquidation", state: "filled",
            accFillSz: size.description, avgPx: price.description, fee: "0", feeCcy: instrument.settleCurrency, category: category,
            tag: tag, cTime: now, uTime: now)
        nextOrderID += 1
        let trade = try execute(
            on: &account, instrument: instrument, size: side == "buy" ? size : -size, price: price, maker: false,
            feeRate: parameters.liquidationFeeRate[tier] ?? 0, ordId: String(order.ordId), billType: "5", changes: &changes)
        order.fee = (-trade.fee).description
        changes.orders.append(order)
        changes.fills.append(FillRecord(
            tradeId: 0, ordId: order.ordId, uid: account.uid, clOrdId: "", instId: instrument.id.rawValue, side: side,
            fillPx: price.description, fillSz: size.description, fee: (-trade.fee).description, feeCcy: trade.feeCurrency,
            pnl: trade.realizedPnL.description, execType: "T", category: category, ts: now))
    }

    /// Runs the liquidation planner on an account and books every executed action: cancelled orders, fills
    /// and bills (category `partial_liquidation` or `full_liquidation`), collateral sales, deficit cover.
    func liquidate(_ uid: String) throws {
        guard let account = accounts[uid] else { return }
        let plan: LiquidationPlan
        do {
            plan = try LiquidationPlanner.plan(
                portfolio(account), openOrders: account.openOrders.count, catalog: catalog, market: market, parameters: parameters)
        } catch {
            return
        }
        var updated = account
        for action in plan.executedActions {
            var changes = ChangeSet()
            let before = updated
            switch action.step {
            case .cancelOrders:
                for (ordId, order) in updated.openOrders.sorted(by: { $0.key < $1.key }) {
                    var cancelled = order
                    cancelled.state = "canceled"
                    cancelled.category = "partial_liquidation"
                    cancelled.uTime = clock()
                    updated.openOrders[ordId] = nil
                    changes.orders.append(cancelled)
                }
            case .ddh1, .ddh2, .basis, .general:
                for fill in action.fills {
                    guard let instrument = catalog.instrument(fill.instrumentID) else { continue }
                    let lot = ExactDecimal(instrument.lotSize)
                    var size = ExactDecimal(abs(fill.sizeContracts)).divided(by: lot).rounded(toScale: 0).multiplied(by: lot)
                    let held = updated.positions[fill.instrumentID]?.pos ?? .zero
                    let closesAll = !held.isZero && abs(fill.sizeContracts) >= abs(held.doubleValue) * (1 - 1e-12)
                        && (fill.sizeContracts > 0) == held.isNegative
                    if closesAll { size = held.magnitude }
                    guard size.units > 0 else { continue }
                    try bookLiquidationFill(
                        &updated, instrument: instrument, size: size, side: fill.sizeContracts > 0 ? "buy" : "sell",
                        price: ExactDecimal(fill.price), category: closesAll ? "full_liquidation" : "partial_liquidation",
                        tag: action.step.rawValue, changes: &changes)
                }
            case .collateral:
                // The house buys the collateral sold: it receives what leaves the account less the penalty to the
                // fund, and pays the liability currency the account receives.
                var houseSide: [String: ExactDecimal] = [:]
                for (currency, change) in action.cashChanges.sorted(by: { $0.key < $1.key }) {
                    houseSide[currency, default: .zero] -= post(
                        ExactDecimal(change), currency, to: &updated, type: "5", subType: "1001", notes: action.reason, changes: &changes)
                }
                for (currency, penalty) in action.insuranceFundChanges.sorted(by: { $0.key < $1.key }) {
                    houseSide[currency, default: .zero] -= fund(ExactDecimal(penalty), currency, changes: &changes)
                }
                for (currency, amount) in houseSide.sorted(by: { $0.key < $1.key }) { houseBooks(amount, currency, changes: &changes) }
            case .deficit:
                for (currency, balance) in updated.balances.sorted(by: { $0.key < $1.key }) where balance.isNegative {
                    let covered = post(-balance, currency, to: &updated, type: "102", subType: "1", notes: "deficit covered by the insurance fund",
                        changes: &changes)
                    fund(-covered, currency, changes: &changes)
                }
            }
            changes.touch(updated, previous: before)
            try commit(changes)
        }
    }
}
