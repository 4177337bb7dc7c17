import MarginEngine
import MarginStore

/// What one market tick did, for logs, tests and the benchmark.
public struct TickReport: Sendable {
    package var marketTime: UnixMillis
    package var restingFills = 0
    public var fundingPayments = 0
    package var settlements = 0
    package var interestBills = 0
    /// Accounts whose figures the move changed and that were re-margined.
    public var remarginedAccounts = 0
    public var liquidatedAccounts: [String] = []
    /// Wall seconds of each phase, in order: `interest`, `funding`, `expiry`, `commit`, `table`, `scan`,
    /// `restingFills`, `remargin`, `liquidation` (for logs, metrics and the benchmark).
    public var phaseSeconds: [(phase: String, seconds: Double)] = []

    mutating func time<T>(_ phase: String, _ body: () throws -> T) rethrows -> T {
        let start = ContinuousClock.now
        defer { phaseSeconds.append((phase, (ContinuousClock.now - start).seconds)) }
        return try body()
    }

    mutating func record(_ phase: String, since start: ContinuousClock.Instant) {
        phaseSeconds.append((phase, (ContinuousClock.now - start).seconds))
    }
}

extension Duration {
    /// The duration in seconds.
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

extension Exchange {
    /// Moves the exchange to a new market: accrues interest over the elapsed market time, settles what expired,
    /// pays funding, then moves the market (``moveMarket(to:report:)``).
    ///
    /// The passage of time — interest, funding and expiry of every account, the market time and `settings`
    /// (the simulator's state that produced `newMarket`) — is one transaction, committed in the same actor
    /// turn as the market swap: a request sees the exchange before the tick or after it, never half of it. A
    /// crash or a failed write leaves all of it undone and the market where it was, so the next tick covers
    /// the interval again and nothing is paid twice or skipped. `sequence` orders the ticks of one simulator: a
    /// tick computed before one already applied is stale and ignored.
    @discardableResult
    public func advance(to newMarket: MarketSnapshot, settings: [String: String] = [:], sequence: UInt64? = nil) async throws -> TickReport
    {
        if let sequence {
            guard sequence > appliedTick else { return TickReport(marketTime: market.valuationTime) }
        }
        let wallStart = ContinuousClock.now
        let start = market.valuationTime
        let end = newMarket.valuationTime
        var report = TickReport(marketTime: end)
        var changes = ChangeSet()
        changes.settings = settings
        changes.settings["marketTime"] = String(end.rawValue)
        var funding: [String: (rate: Double, time: Int64)] = [:]
        if end > start {
            report.interestBills = report.time("interest") { accrueInterest(from: start, to: end, changes: &changes) }
            report.settlements = try report.time("expiry") { try settleExpiries(from: start, to: end, at: newMarket, changes: &changes) }
            // Last: funding leaves most accounts to the commit, which computes them while it writes
            // (``FundingRun``); expiry settles futures and options, not the perpetuals funding is paid on.
            report.fundingPayments = report.time("funding") {
                payFunding(from: start, to: end, at: newMarket, rates: &funding, changes: &changes)
            }
        }
        try report.time("commit") { try commit(changes) }
        if let sequence { appliedTick = sequence }
        lastFunding.merge(funding) { _, new in new }
        try await moveMarket(to: newMarket, report: &report)
        metrics.tick(duration: ContinuousClock.now - wallStart, remarginedAccounts: report.remarginedAccounts)
        return report
    }

    /// Replaces the market without the passage of time (admin "set market", shocks).
    @discardableResult
    public func replaceMarket(_ newMarket: MarketSnapshot) async throws -> TickReport {
        var report = TickReport(marketTime: newMarket.valuationTime)
        try await moveMarket(to: newMarket, report: &report)
        return report
    }

    /// The market moves: the vector table is updated (only instruments whose inputs moved are priced
    /// again), resting orders the new marks cross fill, the accounts the move affects are re-margined off
    /// the request path (``remargin(_:sliceAccounts:)``), warnings go out, and accounts at or below the
    /// trigger are liquidated after a re-check against their state at that moment.
    func moveMarket(to newMarket: MarketSnapshot, report: inout TickReport) async throws {
        market = newMarket
        let previous = report.time("table") { risk.move(to: newMarket, parameters: parameters) }
        let affected = report.time("scan") { accountsAffected(since: previous) }
        report.restingFills = try report.time("restingFills") { try fillRestingOrders() }
        report.remarginedAccounts = affected.count
        var phaseStart = ContinuousClock.now
        let atTrigger = await remargin(affected, sliceAccounts: remarginSliceAccounts)
        report.record("remargin", since: phaseStart)
        riskStateTime = clock()
        if !listeners.isEmpty {
            for slot in affected {
                guard let ratio = risk.figures[slot]?.marginRatio, ratio <= parameters.warningRatio else { continue }
                emit(.liquidationWarning(uid: risk.uids[slot], marginRatio: ratio))
            }
        }
        phaseStart = ContinuousClock.now
        report.liquidatedAccounts = try await liquidate(candidates: atTrigger)
        report.record("liquidation", since: phaseStart)
        emit(.market)
    }

    // MARK: - Resting orders

    /// Fills the resting orders that the current book crosses, one transaction for all of them.
    func fillRestingOrders() throws -> Int {
        var filled = 0
        var changes = ChangeSet()
        for uid in accountsWithOpenOrders.sorted() {
            guard let account = accounts[uid], !account.openOrders.isEmpty else { continue }
            var updated = account
            var crossed = false
            for (_, order) in account.openOrders.sorted(by: { $0.key < $1.key }) {
                guard let instrument = catalog.instrument(order.instId), let price = ExactDecimal(order.px),
                    let top = try? book(instrument)
                else { continue }
                let crosses = order.side == .buy ? top.ask <= price : top.bid >= price
                guard crosses else { continue }
                var open = order
                let remaining = (ExactDecimal(order.sz) ?? .zero) - (ExactDecimal(order.accFillSz) ?? .zero)
                try fill(
                    &open, of: &updated, instrument: instrument, size: remaining, price: price, maker: true, category: .normal,
                    changes: &changes)
                changes.orders.append(open)
                filled += 1
                crossed = true
            }
            if crossed { changes.touch(updated, previous: account) }
        }
        if filled > 0 { try commit(changes) }
        return filled
    }
}
