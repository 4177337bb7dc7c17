import Dispatch
import Foundation
import MarginEngine
import MarginStore

/// The exchange's risk view of its accounts: the engine's scenario-vector table for the current market, an
/// account book mirroring every ledger account in `Double`s (converted at ``LedgerBoundary``), and each
/// account's figures at the current table.
///
/// Every figure the server shows or acts on comes from here — the pre-trade check, the risk loop, the
/// account endpoints, the WebSocket pushes — so the server margins exactly as the batch kernel does (the
/// kernel agrees with the direct computation bit for bit). An account the kernel cannot express (a chosen
/// spot in use, a currency outside the table's universe) is margined by the direct computation instead.
struct RiskMirror: Sendable {
    var table: ScenarioVectorTable
    var kernel: BatchMargin
    /// The table's vectors by instrument id, for the planner and the detailed account views.
    var risksByID: [String: InstrumentRisk]
    /// Bumped whenever the table changes; an account's figures are current when computed at this generation.
    var generation: UInt64 = 1
    var book = AccountBook()
    var slots: [String: Int] = [:]
    var uids: [String] = []
    var figures: [AccountFigures?] = []
    var figuresGeneration: [UInt64] = []
    /// Accounts margined by the direct computation.
    var direct: Set<Int> = []
    var scratch: BatchMargin.Scratch
    /// A one-account book for pre-trade checks.
    var probe = AccountBook()

    init(catalog: InstrumentCatalog, market: MarketSnapshot, parameters: MarginParameters) {
        // Coins with an index but no instrument can still be collateral: they join the currency universe.
        let indexed = market.indices.keys.compactMap { pair -> String? in
            let parts = pair.split(separator: "-")
            return parts.count == 2 ? String(parts[0]) : nil
        }
        table = ScenarioVectorTable(instruments: catalog.instruments, market: market, parameters: parameters, extraCurrencies: indexed)
        kernel = BatchMargin(table: table, parameters: parameters)
        risksByID = table.risksByID
        scratch = BatchMargin.Scratch(currencies: table.currencies.count)
        probe.append(lines: [], balances: [])
    }

    /// Moves to `market`, repricing only the instruments whose inputs moved; returns the previous table.
    mutating func move(to market: MarketSnapshot, parameters: MarginParameters) -> ScenarioVectorTable {
        let previous = table
        table = ScenarioVectorTable(updating: previous, market: market, parameters: parameters)
        kernel = BatchMargin(table: table, parameters: parameters)
        risksByID = table.risksByID
        generation += 1
        return previous
    }

    /// An account's position lines and balances as the engine sees them — positions at their ledger values,
    /// cash less pending interest — or nil when the kernel cannot express it.
    static func rows(
        of account: AccountState, table: ScenarioVectorTable
    ) -> (lines: [AccountBook.Line], balances: [(currency: Int32, amount: Double)])? {
        guard account.chosenSpotInUse.isEmpty else { return nil }
        var lines: [AccountBook.Line] = []
        lines.reserveCapacity(account.positions.count)
        for (id, position) in account.positions {
            guard let index = table.index(of: id) else { return nil }
            lines.append(
                AccountBook.Line(
                    instrument: index, sizeContracts: LedgerBoundary.risk(position.pos), averagePrice: LedgerBoundary.risk(position.avgPx),
                    leverage: account.leverage[id].map(LedgerBoundary.risk) ?? 0))
        }
        var balances: [(currency: Int32, amount: Double)] = []
        for (currency, balance) in account.balances {
            guard let index = table.currencyIndex(of: currency) else { return nil }
            balances.append((index, LedgerBoundary.risk(balance - (account.pendingInterest[currency] ?? .zero))))
        }
        for (currency, pending) in account.pendingInterest where account.balances[currency] == nil {
            guard let index = table.currencyIndex(of: currency) else { return nil }
            balances.append((index, LedgerBoundary.risk(-pending)))
        }
        return (lines, balances)
    }

    /// One account's rows and level for ``build(ordered:workers:direct:)``.
    struct PreparedRows: Sendable {
        var rows: (lines: [AccountBook.Line], balances: [(currency: Int32, amount: Double)])?
        var level: AccountLevel
    }

    /// The rows of each account, in chunks over `workers` threads: each chunk writes its own elements only.
    static func prepareRows(_ accounts: [AccountState], table: ScenarioVectorTable, workers: Int) -> [PreparedRows] {
        @Sendable func prepare(_ account: AccountState) -> PreparedRows {
            PreparedRows(rows: rows(of: account, table: table), level: account.level)
        }
        guard workers > 1, accounts.count >= 4_096 else { return accounts.map(prepare) }
        let empty = PreparedRows(rows: nil, level: .classic)
        var prepared = [PreparedRows](repeating: empty, count: accounts.count)
        let chunks = workers * 8
        let chunkSize = (accounts.count + chunks - 1) / chunks
        prepared.withUnsafeMutableBufferPointer { output in
            let base = UnsafeMutableSendablePointer(output.baseAddress)
            DispatchQueue.concurrentPerform(iterations: chunks) { chunk in
                for index in (chunk * chunkSize)..<min(accounts.count, (chunk + 1) * chunkSize) {
                    base.pointer?[index] = prepare(accounts[index])
                }
            }
        }
        return prepared
    }

    /// Builds the mirror of `accounts` and computes all figures over the machine's cores; `direct` margins an
    /// account the kernel cannot. Slots follow uid order (deterministic whatever the dictionary's order): `order`
    /// is the store's, already sorted by uid; it is checked in one pass and sorted here only if it is not.
    mutating func build(
        accounts: [String: AccountState], order: [String], workers: Int, direct directFigures: (AccountState) -> AccountFigures?
    ) {
        let complete = order.count == accounts.count && zip(order, order.dropFirst()).allSatisfy { $0 < $1 }
        let sequence = complete ? order : accounts.keys.sorted()
        build(ordered: sequence.compactMap { accounts[$0] }, workers: workers, direct: directFigures)
    }

    /// Builds the mirror of `ordered`, accounts already in uid order (one slot each, in that order), and computes
    /// all figures over the machine's cores. Each account's rows (its positions and balances as the engine's
    /// lines) are pure: prepared over the cores, then appended in order.
    mutating func build(ordered: [AccountState], workers: Int, direct directFigures: (AccountState) -> AccountFigures?) {
        book.reserve(accounts: ordered.count, positions: ordered.count * 2)
        slots.reserveCapacity(ordered.count)
        uids.reserveCapacity(ordered.count)
        let firstSlot = book.count
        let prepared = Self.prepareRows(ordered, table: table, workers: workers)
        for (account, rows) in zip(ordered, prepared) {
            let slot = book.append(lines: rows.rows?.lines ?? [], balances: rows.rows?.balances ?? [], level: rows.level)
            slots[account.uid] = slot
            uids.append(account.uid)
            if rows.rows == nil { direct.insert(slot) }
        }
        figures = BatchRemargin.run(book, kernel: kernel, workers: workers)
        figuresGeneration = [UInt64](repeating: generation, count: book.count)
        for slot in figures.indices where figures[slot] == nil || direct.contains(slot) {
            let index = slot - firstSlot
            guard ordered.indices.contains(index) else { continue }
            figures[slot] = directFigures(ordered[index])
        }
    }
}

extension Exchange {
    /// The account book and kernel the exchange margins with, for benchmarks (the same sweep outside the
    /// exchange).
    public func riskBookSnapshot() -> (AccountBook, BatchMargin) { (risk.book, risk.kernel) }

    /// An account's position lines and balances as the engine sees them (``RiskMirror/rows(of:table:)``).
    func riskRows(_ account: AccountState) -> (lines: [AccountBook.Line], balances: [(currency: Int32, amount: Double)])? {
        RiskMirror.rows(of: account, table: risk.table)
    }

    /// Writes an account (new or changed by a commit) into the mirror and computes its figures at the
    /// current table (or marks them stale, to be computed by the next re-margin or on demand).
    func refreshRisk(_ uid: String, computing: Bool = true) {
        guard let account = accounts[uid] else { return }
        let rows = riskRows(account)
        let slot: Int
        if let known = risk.slots[uid] {
            slot = known
            risk.book.replace(slot, lines: rows?.lines ?? [], balances: rows?.balances ?? [], level: account.level)
        } else {
            slot = risk.book.append(lines: rows?.lines ?? [], balances: rows?.balances ?? [], level: account.level)
            risk.slots[uid] = slot
            risk.uids.append(uid)
            risk.figures.append(nil)
            risk.figuresGeneration.append(0)
        }
        if rows == nil { risk.direct.insert(slot) } else { risk.direct.remove(slot) }
        if computing { computeFigures(slot) } else { risk.figuresGeneration[slot] = 0 }
    }

    /// After a funding run's change: the account's balance in the mirror (currency `index`, `amount` what the
    /// engine sees: the stored balance less pending interest) set in place, its rows otherwise unchanged, and its
    /// figures marked stale, to be computed by the next re-margin or on demand.
    func refreshRiskBalance(_ uid: String, slot: Int, currency index: Int32?, amount: Double) {
        guard !risk.direct.contains(slot), let index, risk.book.setBalance(slot, currency: index, amount: amount) else {
            refreshRisk(uid, computing: false)
            return
        }
        risk.figuresGeneration[slot] = 0
    }

    /// Computes one account's figures at the current table (kernel, or the direct computation).
    func computeFigures(_ slot: Int) {
        var result: AccountFigures?
        if !risk.direct.contains(slot) { result = risk.kernel.figures(risk.book, slot, scratch: &risk.scratch) }
        if result == nil, let account = accounts[risk.uids[slot]] { result = directFigures(account) }
        risk.figures[slot] = result
        risk.figuresGeneration[slot] = risk.generation
    }

    /// The direct computation (priced per account): for what the kernel cannot express (nil when the market
    /// lacks something the account needs).
    func directFigures(_ account: AccountState) -> AccountFigures? {
        Self.directFigures(account, catalog: catalog, market: market, parameters: parameters, risks: risk.risksByID)
    }

    static func directFigures(
        _ account: AccountState, catalog: InstrumentCatalog, market: MarketSnapshot, parameters: MarginParameters,
        risks: [String: InstrumentRisk]
    ) -> AccountFigures? {
        let portfolio = portfolio(account, catalog: catalog)
        switch account.level {
        case .portfolioMargin: return try? PortfolioMargin.compute(portfolio, market: market, parameters: parameters, risks: risks).figures
        case .classic: return try? ClassicMargin.compute(portfolio, market: market, parameters: parameters).figures
        }
    }

    /// An account's figures in its mode at the current market (nil when its market data is incomplete).
    func currentFigures(_ uid: String) -> AccountFigures? {
        guard let slot = risk.slots[uid] else { return nil }
        if risk.figuresGeneration[slot] != risk.generation { computeFigures(slot) }
        return risk.figures[slot]
    }

    /// Figures of a hypothetical portfolio in `level` (the pre-trade check): through the kernel on a
    /// one-account book, else directly.
    func figures(of portfolio: Portfolio, level: AccountLevel) throws(EngineError) -> AccountFigures {
        if let rows = AccountBook.rows(of: portfolio, table: risk.table) {
            risk.probe.replace(0, lines: rows.lines, balances: rows.balances, level: level)
            if let figures = risk.kernel.figures(risk.probe, 0, scratch: &risk.scratch) { return figures }
        }
        switch level {
        case .portfolioMargin:
            return try PortfolioMargin.compute(portfolio, market: market, parameters: parameters, risks: risk.risksByID).figures
        case .classic: return try ClassicMargin.compute(portfolio, market: market, parameters: parameters).figures
        }
    }

    /// Threads used to re-margin many accounts at once.
    static var workers: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }

    /// The accounts whose figures a move from `previous` to the current table changes: holders of an
    /// instrument whose vector or market moved, of a currency whose index moved, and every account
    /// margined directly. The others' figures are marked current as they are.
    func accountsAffected(since previous: ScenarioVectorTable) -> [Int] {
        let changed = risk.table.changedInstrumentFlags(since: previous)
        let currencies = risk.table.changedCurrencies(since: previous)
        let book = risk.book
        var affected: [Int] = []
        for slot in 0..<book.count {
            var moved = risk.direct.contains(slot) || risk.figuresGeneration[slot] != risk.generation - 1
            if !moved {
                for line in book.positionStart[slot]..<book.positionEnd[slot] where changed[Int(book.instrument[line])] {
                    moved = true
                    break
                }
            }
            if !moved, !currencies.isEmpty {
                for line in book.balanceStart[slot]..<book.balanceEnd[slot] where currencies.contains(book.balanceCurrency[line]) {
                    moved = true
                    break
                }
            }
            if moved {
                affected.append(slot)
            } else {
                risk.figuresGeneration[slot] = risk.generation
            }
        }
        return affected
    }

    /// Re-margins `slots` at the current table over the machine's cores, in slices that each take a few
    /// milliseconds, letting requests in between (an account a request changes meanwhile is re-margined by
    /// its commit, against the same table). Returns the accounts at or below the liquidation trigger.
    func remargin(_ slots: [Int], sliceAccounts: Int = 8_192) async -> [Int] {
        var atTrigger: [Int] = []
        var start = 0
        while start < slots.count {
            let slice = Array(slots[start..<min(start + sliceAccounts, slots.count)])
            start += slice.count
            let generation = risk.generation
            let computed = BatchRemargin.run(risk.book, kernel: risk.kernel, accounts: slice, workers: Self.workers)
            for (offset, slot) in slice.enumerated() {
                risk.figures[slot] = computed[offset]
                risk.figuresGeneration[slot] = generation
                if computed[offset] == nil || risk.direct.contains(slot) { computeFigures(slot) }
                if let ratio = risk.figures[slot]?.marginRatio, ratio <= parameters.liquidationTriggerRatio { atTrigger.append(slot) }
            }
            if start < slots.count { await Task.yield() }
        }
        return atTrigger
    }

    /// The accounts holding a line of an instrument for which `matches` holds, in slot order.
    func holders(where matches: (Int32) -> Bool) -> [Int] {
        let book = risk.book
        var found: [Int] = []
        for slot in 0..<book.count {
            for line in book.positionStart[slot]..<book.positionEnd[slot] where matches(book.instrument[line]) {
                found.append(slot)
                break
            }
        }
        return found
    }
}
