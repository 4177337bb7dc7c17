import MarginEngine
import MarginStore

/// A net position held exactly.
package struct PositionState: Sendable, Equatable {
    package var pos: ExactDecimal
    package var avgPx: ExactDecimal
    package var cTime: Int64
    package var uTime: Int64
}

/// Everything the exchange keeps in memory about one account; the database holds the same, written in one
/// transaction per change.
package struct AccountState: Sendable {
    package var record: AccountRecord
    package var balances: [String: ExactDecimal]
    package var positions: [String: PositionState]
    package var openOrders: [Int64: OrderRecord]
    /// Interest accrued and not yet capitalised, by currency (it already lowers equity).
    package var pendingInterest: [String: ExactDecimal]
    /// Total interest ever charged, by currency.
    package var accruedInterest: [String: ExactDecimal]
    /// Leverage set per instrument (classic mode), as OKX's `set-leverage`.
    package var leverage: [String: ExactDecimal]
    /// Spot in use chosen per coin (`set-riskOffset-amt`), in coins.
    package var chosenSpotInUse: [String: ExactDecimal] = [:]

    package var uid: String { record.uid }
    package var level: AccountLevel { AccountLevel(rawValue: record.acctLv) ?? .classic }
}

/// What one state change writes: new rows and changed accounts, applied to memory only after the
/// transaction commits.
struct ChangeSet {
    var accounts: [String: AccountState] = [:]
    var previous: [String: AccountState] = [:]
    var orders: [OrderRecord] = []
    var fills: [FillRecord] = []
    var bills: [BillRecord] = []
    var insuranceFund: [String: ExactDecimal] = [:]
    /// New house balances (absolute, like the fund's).
    var house: [String: ExactDecimal] = [:]
    var keys: [APIKeyRecord] = []
    var settings: [String: String] = [:]
    /// Cash-only changes (funding): the balance of (uid, currency) after this change set, for accounts that
    /// nothing else in the set changes, as the index of its entry in `cashEntries`. Written and applied without
    /// copying the accounts.
    private(set) var cash: [CashKey: Int] = [:]
    /// The cash-only balances in the order they were first set (a funding tick's: account slot order, which is
    /// uid order), so the store writes them in key order. An entry ``touch(_:previous:)`` took over stays here,
    /// marked dead, and is skipped.
    private var cashEntries: [(key: CashKey, balance: ExactDecimal, live: Bool)] = []
    /// The currencies `cash` holds balances of (funding's settlement currencies: a handful).
    var cashCurrencies: Set<String> = []

    /// Records `account` as this change set leaves it. `old` is the account as it was before the change set;
    /// ``current(_:in:)`` folds cash-only changes into it, so the first `old` recorded forgets the balances
    /// those changes moved (they are written), and the cash-only entries are dropped: the copy now holds them.
    mutating func touch(_ account: AccountState, previous old: AccountState) {
        if previous[account.uid] == nil {
            var stored = old
            for currency in cashCurrencies {
                guard let entry = cash.removeValue(forKey: CashKey(uid: account.uid, currency: currency)) else { continue }
                cashEntries[entry].live = false
                stored.balances[currency] = nil
            }
            previous[account.uid] = stored
        }
        accounts[account.uid] = account
    }

    /// Moves the cash-only balance of (uid, currency) to `balance`.
    mutating func setCash(_ balance: ExactDecimal, uid: String, currency: String) {
        let key = CashKey(uid: uid, currency: currency)
        if let entry = cash[key] {
            cashEntries[entry].balance = balance
        } else {
            cash[key] = cashEntries.count
            cashEntries.append((key, balance, true))
            cashCurrencies.insert(currency)
        }
    }

    /// Makes room for `count` more cash-only balances and bills (a funding tick's: one per payer), so that a
    /// million postings do not regrow and rehash the tables as they come.
    mutating func reserveCashPostings(_ count: Int) {
        cash.reserveCapacity(cash.count + count)
        cashEntries.reserveCapacity(cashEntries.count + count)
        bills.reserveCapacity(bills.count + count)
    }

    /// The cash-only balance of (uid, currency) this change set leaves, or nil when it sets none.
    func cashBalance(_ key: CashKey) -> ExactDecimal? {
        cash[key].map { cashEntries[$0].balance }
    }

    /// The account as this change set leaves it so far: its copy when the set has touched it, otherwise the
    /// exchange's with the set's cash-only changes applied.
    func current(_ uid: String, in stored: [String: AccountState]) -> AccountState? {
        // (Funding reads the accounts it posts to through the cash-only path in place, not through this copy.)
        if let copied = accounts[uid] { return copied }
        guard var account = stored[uid] else { return nil }
        for currency in cashCurrencies {
            if let balance = cashBalance(CashKey(uid: uid, currency: currency)) { account.balances[currency] = balance }
        }
        return account
    }
}

extension ChangeSet {
    /// The cash-only balances in the order they were first set, each once.
    var cashInOrder: [(key: CashKey, balance: ExactDecimal)] {
        var ordered: [(key: CashKey, balance: ExactDecimal)] = []
        ordered.reserveCapacity(cash.count)
        for entry in cashEntries where entry.live { ordered.append((entry.key, entry.balance)) }
        return ordered
    }
}

/// An account's balance in one currency, as a key.
struct CashKey: Hashable, Sendable {
    var uid: String
    var currency: String
}

/// A trade executed against an account (exact), for bills, fills and the WebSocket feed.
struct ExecutedTrade: Sendable {
    var instrument: Instrument
    /// Signed contracts (coins for spot): buy > 0.
    var size: ExactDecimal
    var price: ExactDecimal
    var realizedPnL: ExactDecimal
    var premium: ExactDecimal
    var fee: ExactDecimal
    var feeCurrency: String
    var isMaker: Bool
}
