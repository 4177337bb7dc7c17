import Foundation
import MarginEngine
import MarginStore

/// Builds the exchange's accounts from the rows a ``LedgerStore`` hands over at start-up: an account's rows of
/// other tables attach to it (rows of an unknown account are ignored), decimals are parsed from their text.
///
/// Accounts arrive in uid order (``LedgerVisitor``) and are staged in an array; the SQLite store also hands each
/// other table over in uid order, so a row finds its account by advancing a cursor per table, without hashing
/// its uid. A row out of that order (a store that does not sort them, a uid the cursor has passed) finds it by
/// binary search, or, failing that, through an index built on first need. ``finish()`` then keys the staged accounts by uid, in a dictionary
/// sized once. (At a million accounts, hashing every row's uid into a growing dictionary of large values was
/// most of start-up.)
struct LedgerLoader: LedgerVisitor {
    var accounts: [String: AccountState]
    var fund: [Book: ExactDecimal]
    var house: [Book: ExactDecimal]
    var largestOrderID: Int64 = 0
    /// The accounts' uids in the order the store handed them over (uid order: ``LedgerVisitor``).
    var order: [String] = []
    /// The accounts handed over, in that order, until ``finish()``.
    private var staged: [AccountState] = []
    /// uid → position in `staged`, built the first time a row cannot be matched by its table's cursor.
    private var stagedIndex: [String: Int]?
    /// Per table (balance, position, open order, interest, setting): the staged position its last row matched.
    private var cursors = [Int](repeating: 0, count: 5)

    init(accounts: [String: AccountState], fund: [Book: ExactDecimal], house: [Book: ExactDecimal]) {
        self.accounts = accounts
        self.fund = fund
        self.house = house
    }

    mutating func account(_ record: AccountRecord) {
        order.append(record.uid)
        staged.append(
            AccountState(
                record: record, balances: [:], positions: [:], openOrders: [:], pendingInterest: [:], accruedInterest: [:], leverage: [:]))
    }

    /// Changes the account `uid` (staged, or already held), through table `table`'s cursor; nothing when unknown.
    private mutating func attach(_ uid: String, table: Int, _ change: (inout AccountState) -> Void) {
        var cursor = cursors[table]
        while cursor < staged.count, staged[cursor].record.uid < uid { cursor += 1 }
        if cursor < staged.count, staged[cursor].record.uid == uid {
            cursors[table] = cursor
            change(&staged[cursor])
            return
        }
        // Out of the table's order: a binary search (the staged accounts are in uid order), then, should the
        // store's order and Swift's disagree (non-ASCII uids), an index.
        var low = 0
        var high = staged.count
        while low < high {
            let middle = (low + high) / 2
            if staged[middle].record.uid < uid { low = middle + 1 } else { high = middle }
        }
        if low < staged.count, staged[low].record.uid == uid {
            change(&staged[low])
            return
        }
        if stagedIndex == nil {
            stagedIndex = Dictionary(staged.indices.map { (staged[$0].record.uid, $0) }, uniquingKeysWith: { first, _ in first })
        }
        if let position = stagedIndex?[uid] {
            change(&staged[position])
        } else {
            accounts.modify(uid, change)
        }
    }

    mutating func balance(uid: String, ccy: String, cashBal: String) {
        attach(uid, table: 0) { $0.balances[ccy] = ExactDecimal(cashBal) ?? .zero }
    }

    mutating func position(uid: String, instId: String, pos: String, avgPx: String, cTime: Int64, uTime: Int64) {
        attach(uid, table: 1) {
            $0.positions[instId] = PositionState(
                pos: ExactDecimal(pos) ?? .zero, avgPx: ExactDecimal(avgPx) ?? .zero, cTime: cTime, uTime: uTime)
        }
    }

    mutating func openOrder(_ order: OrderRecord) {
        attach(order.uid, table: 2) { $0.openOrders[order.ordId] = order }
    }

    mutating func interest(uid: String, ccy: String, pending: String, accrued: String) {
        attach(uid, table: 3) {
            $0.pendingInterest[ccy] = ExactDecimal(pending) ?? .zero
            $0.accruedInterest[ccy] = ExactDecimal(accrued) ?? .zero
        }
    }

    mutating func accountSetting(key: String, value: String) {
        let parts = key.split(separator: ":").map(String.init)
        guard parts.count == 3 else { return }
        if parts[0] == "lever" { attach(parts[1], table: 4) { $0.leverage[parts[2]] = ExactDecimal(value) } }
        if parts[0] == "siu" { attach(parts[1], table: 4) { $0.chosenSpotInUse[parts[2]] = ExactDecimal(value) } }
    }

    mutating func insuranceFund(partition: Int, ccy: String, balance: String) {
        fund[Book(partition: partition, currency: ccy)] = ExactDecimal(balance) ?? .zero
    }
    mutating func house(partition: Int, ccy: String, balance: String) {
        house[Book(partition: partition, currency: ccy)] = ExactDecimal(balance) ?? .zero
    }
    mutating func largestOrderID(_ id: Int64) { largestOrderID = id }

    /// Hands the staged accounts over in the order the store gave them (uid order), leaving none staged: for a
    /// caller that keys them itself.
    mutating func takeStaged() -> [AccountState] {
        let taken = staged
        staged = []
        stagedIndex = nil
        return taken
    }

    /// Keys the staged accounts by uid into `accounts` (a staged account replaces a held one of the same uid).
    mutating func finish() {
        accounts.reserveCapacity(accounts.count + staged.count)
        for account in staged { accounts[account.record.uid] = account }
        staged = []
        stagedIndex = nil
        cursors = [Int](repeating: 0, count: cursors.count)
    }
}

/// Accounts keyed by uid, built on a thread of their own (start-up builds the risk mirror meanwhile).
final class KeyedAccounts: @unchecked Sendable {  // @unchecked: `built` is written before `done` is signalled, read after
    private let done = DispatchSemaphore(value: 0)
    private var built: [String: AccountState] = [:]

    init(_ accounts: [AccountState]) {
        Thread.detachNewThread { [self] in
            var keyed: [String: AccountState] = [:]
            keyed.reserveCapacity(accounts.count)
            for account in accounts { keyed[account.uid] = account }
            built = keyed
            done.signal()
        }
    }

    /// Waits for the dictionary and hands it over (once).
    func result() -> [String: AccountState] {
        done.wait()
        defer { built = [:] }
        return built
    }
}

extension Dictionary where Key == String, Value == AccountState {
    /// Changes a stored account in place; nothing when there is none. `self[uid]?.balances[…] = …` copies the
    /// whole account in and out of the dictionary, which a million rows at start-up (or a funding tick's
    /// million balances) pay for.
    mutating func modify(_ uid: String, _ change: (inout AccountState) -> Void) {
        guard let index = index(forKey: uid) else { return }
        change(&values[index])
    }
}
