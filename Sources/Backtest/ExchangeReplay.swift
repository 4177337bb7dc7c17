import Foundation
import MarginEngine
import MarginStore
import Sandbox
import Synchronization

/// The market clock the replayed exchange reads for its records (bills, orders): the path's market time, so a
/// run writes the same rows whenever it runs.
final class ReplayClock: Sendable {
    private let milliseconds: Atomic<Int64>

    init(_ start: UnixMillis) { milliseconds = Atomic(start.rawValue) }

    var now: Int64 { milliseconds.load(ordering: .relaxed) }
    func set(_ time: UnixMillis) { milliseconds.store(time.rawValue, ordering: .relaxed) }
}

/// What happened to the population on the exchange under one parameter set and one mode.
public struct Outcomes: Sendable {
    /// Accounts opened (all their orders filled) and those with an order refused.
    public var accountsOpened = 0
    public var openingRefusals: [String] = []
    /// Accounts liquidated at least once, and of those, the ones left with no position.
    public var liquidatedAccounts = 0
    public var fullyLiquidatedAccounts = 0
    public var partiallyLiquidatedAccounts: Int { liquidatedAccounts - fullyLiquidatedAccounts }
    /// Liquidation runs (one per account per step it was liquidated in).
    public var liquidationEvents = 0
    /// Accounts whose margin ratio fell below ``Outcomes/marginCallRatio`` at some step but were never liquidated.
    public var marginCalls = 0
    /// Deficits the insurance fund covered (bad debt), in USD at the index of the step they occurred in.
    public var badDebtUSD = 0.0
    public var accountsWithBadDebt = 0
    /// What the insurance fund received (liquidation and trading fees, collateral penalties, interest), each
    /// amount in USD at the index of the step it arrived in.
    public var fundIncomeUSD = 0.0
    /// The insurance fund's balance (income less deficits), in USD at each step's indices: at the end, and its
    /// lowest point.
    public var fundEndUSD = 0.0
    public var fundLowestUSD = 0.0
    public var liquidatedByKind: [String: Int] = [:]
    public var accountsByKind: [String: Int] = [:]
    /// The lowest margin ratio any account reached after a step's liquidations (nil when none had a requirement).
    /// Negative would be adjusted equity below zero, which a liquidation never leaves (a deficit is covered).
    public var lowestRatio: Double?
    /// Account-steps whose margin ratio after the step's liquidations was still at or below the liquidation
    /// trigger: every such account is liquidated in the step itself, so anything but 0 is an exchange fault (the
    /// backtest found two: a classic liability left beside coins, interest left owing after a deficit).
    public var leftAtOrBelowTrigger = 0
    /// Per step of the path: liquidation runs, accounts below the margin-call ratio, fund balance (USD), and the
    /// 5th, 25th, 50th, 75th and 95th percentiles of the margin ratio of accounts with a requirement.
    public var liquidationsByStep: [Int] = []
    public var marginCallAccountsByStep: [Int] = []
    public var fundUSDByStep: [Double] = []
    public var ratioPercentilesByStep: [[Double]] = []
    /// Seconds of wall-clock time the run took (opening, replay and coverage), measured.
    public var seconds = 0.0

    /// OKX's margin-call level: 110 % (spec 04, the planner's stop level).
    public static let marginCallRatio = 1.1
    /// Accounts requiring less than a cent are left out of the ratio statistics and of coverage: what a closed book
    /// leaves is floating-point residue (1e-13 USD of MMR beside a few dollars of equity, a ratio of 1e13), not risk.
    public static let minimumRequirementUSD = 0.01
    public static let percentiles = [0.05, 0.25, 0.5, 0.75, 0.95]
}

/// One run: the population opened on a fresh exchange (in-memory database) in one mode under one parameter
/// set, then moved along the path with ``Exchange/advance(to:settings:sequence:)`` — funding at funding hours,
/// interest, expiries, marks, the risk loop, the liquidation planner and the insurance fund, exactly as
/// `pm serve` runs them. An actor, so that the runs of one backtest step side by side on the machine's cores.
actor ExchangeReplay {
    let parameters: MarginParameters
    let level: AccountLevel
    let exchange: Exchange
    let clock: ReplayClock
    /// Population index → exchange uid (nil: not opened).
    var uids: [String?] = []
    var indexOfUID: [String: Int] = [:]
    var outcomes = Outcomes()
    var liquidated: [Bool] = []
    var belowCall: [Bool] = []
    var hadBadDebt: [Bool] = []
    var lastDeficitBill: Int64 = 0
    /// The fund's balances at the previous step (its flows are valued at the step they happen in).
    var lastFund: [String: ExactDecimal] = [:]
    let kinds: [String]

    init(
        parameters: MarginParameters, level: AccountLevel, catalog: InstrumentCatalog, market: MarketSnapshot, kinds: [String]
    ) throws {
        self.parameters = parameters
        self.level = level
        self.kinds = kinds
        clock = ReplayClock(market.valuationTime)
        let secrets = SecretBox(keyBytes: Array(repeating: 7, count: 32))
        exchange = try Exchange(
            database: try AppDatabase.inMemory(), secrets: secrets, catalog: catalog, parameters: parameters, market: market,
            clock: { [clock] in clock.now })
    }

    /// Opens every account: deposits, portfolio margin (with the acknowledgement) when that is the run's mode,
    /// then its market orders in one batch. An account with an order refused keeps what filled and is reported.
    func open(_ population: Population) async throws {
        uids = []
        for (index, spec) in population.accounts.enumerated() {
            let created = try await exchange.createAccount(label: spec.source, deposits: spec.deposits)
            if level == .portfolioMargin {
                try await exchange.acknowledgePortfolioMargin(uid: created.uid)
                do {
                    _ = try await exchange.setAccountLevel(uid: created.uid, target: AccountLevel.portfolioMargin.rawValue)
                } catch {
                    outcomes.openingRefusals.append("\(spec.source): portfolio margin refused: \(error)")
                    uids.append(nil)
                    continue
                }
            }
            let requests = spec.orders.map { order in
                OrderRequest(
                    marketOrder: order.instrumentID, side: order.sizeContracts.isNegative ? .sell : .buy,
                    size: order.sizeContracts.magnitude,
                    tag: "backtest")
            }
            let results = await exchange.placeOrders(uid: created.uid, requests)
            for (order, result) in zip(spec.orders, results) {
                if case .failure(let error) = result {
                    outcomes.openingRefusals.append("\(spec.source): \(order.instrumentID) \(order.sizeContracts): \(error.message)")
                }
            }
            uids.append(created.uid)
            indexOfUID[created.uid] = index
            outcomes.accountsOpened += 1
            outcomes.accountsByKind[kinds[index], default: 0] += 1
        }
        liquidated = [Bool](repeating: false, count: uids.count)
        belowCall = [Bool](repeating: false, count: uids.count)
        hadBadDebt = [Bool](repeating: false, count: uids.count)
    }

    /// The books as opened, for the coverage pass, indexed against `table`.
    func staticBooks(table: ScenarioVectorTable) async -> StaticBooks {
        var rows: [(lines: [AccountBook.Line], balances: [(currency: Int32, amount: Double)])?] = []
        for uid in uids {
            guard let uid, let account = await exchange.account(uid) else {
                rows.append(nil)
                continue
            }
            rows.append(Exchange.riskRows(of: account, table: table))
        }
        return StaticBooks(rows: rows, level: level)
    }

    /// Records the state after opening (step 0).
    func recordOpening(market: MarketSnapshot) async throws {
        try await record(liquidatedUIDs: [], market: market)
    }

    /// Moves the exchange to the step's market and records what happened.
    func step(to market: MarketSnapshot) async throws {
        clock.set(market.valuationTime)
        let report = try await exchange.advance(to: market)
        try await record(liquidatedUIDs: report.liquidatedAccounts, market: market)
    }

    func record(liquidatedUIDs: [String], market: MarketSnapshot) async throws {
        for uid in liquidatedUIDs {
            guard let index = indexOfUID[uid] else { continue }
            outcomes.liquidationEvents += 1
            liquidated[index] = true
        }
        let figures = await exchange.riskFigures(of: uids.map { $0 ?? "" })
        var ratios: [Double] = []
        ratios.reserveCapacity(figures.count)
        var calls = 0
        for (index, figure) in figures.enumerated() {
            guard uids[index] != nil, let figure, figure.totalMmrUSD >= Outcomes.minimumRequirementUSD, let ratio = figure.marginRatio,
                ratio.isFinite
            else { continue }
            ratios.append(ratio)
            if ratio <= parameters.liquidationTriggerRatio { outcomes.leftAtOrBelowTrigger += 1 }
            if ratio < Outcomes.marginCallRatio {
                calls += 1
                belowCall[index] = true
            }
            outcomes.lowestRatio = min(outcomes.lowestRatio ?? ratio, ratio)
        }
        ratios.sort()
        outcomes.ratioPercentilesByStep.append(
            ratios.isEmpty
                ? []
                : Outcomes.percentiles.map { share in
                    ratios[min(ratios.count - 1, Int((Double(ratios.count - 1) * share).rounded()))]
                })
        outcomes.liquidationsByStep.append(liquidatedUIDs.filter { indexOfUID[$0] != nil }.count)
        outcomes.marginCallAccountsByStep.append(calls)
        // Deficits are covered only by a liquidation: the ledger is read only after one.
        let deficits = liquidatedUIDs.isEmpty ? [] : try await exchange.bills(type: .deficitCover, after: lastDeficitBill)
        var deficitUSD = 0.0
        for bill in deficits {
            lastDeficitBill = max(lastDeficitBill, bill.billId)
            let amount = ExactDecimal(bill.balChg) ?? .zero
            deficitUSD += LedgerBoundary.risk(amount) * ((try? market.indexUSD(bill.ccy)) ?? 0)
            if let index = indexOfUID[bill.uid] { hadBadDebt[index] = true }
        }
        outcomes.badDebtUSD += deficitUSD
        // The fund's flow this step, at this step's prices: income less the deficits it covered.
        let fund = await exchange.insuranceFundBalances()
        var fundUSD = 0.0
        var flowUSD = 0.0
        for currency in Set(fund.keys).union(lastFund.keys).sorted() {
            let index = (try? market.indexUSD(currency)) ?? 0
            let balance = fund[currency] ?? .zero
            fundUSD += LedgerBoundary.risk(balance) * index
            flowUSD += LedgerBoundary.risk(balance - (lastFund[currency] ?? .zero)) * index
        }
        lastFund = fund
        outcomes.fundIncomeUSD += flowUSD + deficitUSD
        outcomes.fundUSDByStep.append(fundUSD)
        outcomes.fundEndUSD = fundUSD
        outcomes.fundLowestUSD = outcomes.fundUSDByStep.count == 1 ? fundUSD : min(outcomes.fundLowestUSD, fundUSD)
    }

    /// Totals at the end of the path: who was liquidated fully (no position left) or partly, and the margin
    /// calls that never became liquidations.
    func finish() async {
        outcomes.liquidatedAccounts = 0
        outcomes.fullyLiquidatedAccounts = 0
        outcomes.marginCalls = 0
        outcomes.liquidatedByKind = [:]
        for (index, uid) in uids.enumerated() {
            guard let uid else { continue }
            if liquidated[index] {
                outcomes.liquidatedAccounts += 1
                outcomes.liquidatedByKind[kinds[index], default: 0] += 1
                if await exchange.account(uid)?.positions.isEmpty ?? true { outcomes.fullyLiquidatedAccounts += 1 }
            } else if belowCall[index] {
                outcomes.marginCalls += 1
            }
        }
        outcomes.accountsWithBadDebt = hadBadDebt.filter { $0 }.count
    }
}
