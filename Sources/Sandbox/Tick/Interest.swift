import MarginEngine
import MarginStore

extension Exchange {
    /// What an account's positions add to its currencies' equity at the current market (unrealised P&L,
    /// option value), so that interest is charged on the liability `−eq`, unrealised losses included.
    /// Valued from the vector table's resolved markets (nothing is priced again).
    func positionEquity(_ account: AccountState) -> [String: Double] {
        var equity: [String: Double] = [:]
        for (id, held) in account.positions.sorted(by: { $0.key < $1.key }) {
            guard let index = risk.table.index(of: id), let instrumentMarket = risk.table.market(at: index) else { continue }
            let position = Position(
                instrument: instrumentMarket.instrument, ledger: LedgerPosition(sizeContracts: held.pos, averagePrice: held.avgPx))
            equity[instrumentMarket.instrument.settleCurrency, default: 0] +=
                PositionValuation(position, market: instrumentMarket).equityContribution
        }
        return equity
    }

    /// Per-second interest on every liability (`−eq`: borrowed cash and unrealised losses) above its quota,
    /// capitalised hourly (docs/methodology/03-account.md §4). Only accounts with a liability at the tick's opening
    /// market (from their figures) or pending interest to capitalise are visited.
    func accrueInterest(from start: UnixMillis, to end: UnixMillis, changes: inout ChangeSet) -> Int {
        var debtors = accountsWithPendingInterest
        for slot in risk.uids.indices {
            if risk.figuresGeneration[slot] != risk.generation { computeFigures(slot) }
            if risk.figures[slot]?.accruesInterest ?? false { debtors.insert(risk.uids[slot]) }
        }
        let ordered = debtors.sorted()
        var equitiesByAccount: [String: [String: Double]] = [:]
        var borrowedByPartition: [Int: [String: Double]] = [:]
        for uid in ordered {
            guard let account = accounts[uid] else { continue }
            let beyond = positionEquity(account)
            var equities: [String: Double] = [:]
            let partition = partitions.partition(of: uid)
            for currency in Set(account.balances.keys).union(beyond.keys) {
                let equity = LedgerBoundary.risk(account.balances[currency] ?? .zero) + (beyond[currency] ?? 0)
                equities[currency] = equity
                if equity < 0 { borrowedByPartition[partition, default: [:]][currency, default: 0] -= equity }
            }
            equitiesByAccount[uid] = equities
        }
        let borrowed = utilisationTotals(borrowedByPartition, changes: &changes)
        borrowedByCurrency = borrowed
        guard !ordered.isEmpty else { return 0 }
        var bills = 0
        for uid in ordered {
            guard let account = changes.current(uid, in: accounts), let equities = equitiesByAccount[uid] else { continue }
            var owing = Set<String>()
            for (currency, equity) in equities where equity < 0 { owing.insert(currency) }
            for (currency, pending) in account.pendingInterest where !pending.isZero { owing.insert(currency) }
            guard !owing.isEmpty else { continue }
            var updated = account
            var changed = false
            for currency in owing.sorted() {
                guard let index = try? market.indexUSD(currency) else { continue }
                let curve = parameters.interestRateCurve(for: currency)
                let rate = curve.annualRate(utilisation: curve.utilisation(totalBorrowed: borrowed[currency] ?? 0, indexUSD: index))
                let quota = parameters.interestFreeQuota(for: currency, equities: equities)
                let cash = account.balances[currency] ?? .zero
                let result = InterestAccrual.run(
                    currency: currency, start: start, end: end, cashBalance: cash, quota: ExactDecimal(quota),
                    annualRate: ExactDecimal(rate),
                    events: [], pendingInterest: account.pendingInterest[currency] ?? .zero,
                    equityBeyondCash: ExactDecimal((equities[currency] ?? 0) - LedgerBoundary.risk(cash)))
                for bill in result.bills {
                    let charged = post(
                        -bill.amount, currency, to: &updated, type: .interest, subType: BillSubType.interest,
                        notes: "interest \(bill.reason.rawValue)",
                        changes: &changes)
                    updated.accruedInterest[currency, default: .zero] += bill.amount
                    fund(-charged, currency, for: updated.uid, changes: &changes)
                    bills += 1
                    changed = true
                }
                if (account.pendingInterest[currency] ?? .zero) != result.pendingInterest {
                    updated.pendingInterest[currency] = result.pendingInterest
                    changed = true
                }
            }
            if changed { changes.touch(updated, previous: account) }
        }
        return bills
    }

    /// The liabilities bearing interest, by currency, over the whole ledger: this exchange's accounts (by partition,
    /// `mine`), and, when another node holds some partitions, what each of those stored with the last tick it applied
    /// (setting `borrowed.PARTITION.CCY`, at most that node's lag behind). This exchange's partitions store theirs in
    /// the tick's transaction (`changes`). With every partition here (SQLite, or a lone node) nothing is read or stored.
    func utilisationTotals(_ mine: [Int: [String: Double]], changes: inout ChangeSet) -> [String: Double] {
        var total: [String: Double] = [:]
        for amounts in mine.values { for (currency, amount) in amounts { total[currency, default: 0] += amount } }
        let held = Set(heldPartitions)
        guard held.count < partitions.count else { return total }
        var stored: [Int: [String: Double]] = [:]
        for setting in (try? database.settings(prefix: "borrowed.")) ?? [] {
            let parts = setting.key.split(separator: ".", maxSplits: 2).map(String.init)
            guard parts.count == 3, let partition = Int(parts[1]), let amount = Double(setting.value) else { continue }
            stored[partition, default: [:]][parts[2]] = amount
        }
        for (partition, amounts) in stored where !held.contains(partition) {
            for (currency, amount) in amounts { total[currency, default: 0] += amount }
        }
        for partition in held {
            let now = mine[partition] ?? [:]
            for currency in Set(now.keys).union(stored[partition]?.keys ?? [:].keys) where now[currency] != stored[partition]?[currency] {
                changes.settings["borrowed.\(partition).\(currency)"] = String(now[currency] ?? 0)
            }
        }
        return total
    }
}
