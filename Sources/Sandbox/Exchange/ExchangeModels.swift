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

/// A row of the insurance fund or of the house: a partition's balance in one currency (the partition of the
/// accounts whose movements it mirrors). The fund and the house are the sums over partitions.
struct Book: Hashable, Comparable, Sendable {
    var partition: Int
    var currency: String

    static func < (a: Book, b: Book) -> Bool { (a.partition, a.currency) < (b.partition, b.currency) }
}

extension Dictionary where Key == Book, Value == ExactDecimal {
    /// The sum over partitions, per currency.
    var byCurrency: [String: ExactDecimal] {
        var sums: [String: ExactDecimal] = [:]
        for (book, balance) in self { sums[book.currency, default: .zero] += balance }
        return sums
    }
}

/// What one state change writes: new rows and changed accounts, applied to memory only after the
/// transaction commits.
struct ChangeSet {
    var accounts: [String: AccountState] = [:]
    var previous: [String: AccountState] = [:]
    var orders: [OrderRecord] = []
    var fills: [FillRecord] = []
    var bills: [BillRecord] = []
    /// New balances of the insurance fund's rows (absolute).
    var insuranceFund: [Book: ExactDecimal] = [:]
    /// New house balances (absolute, like the fund's).
    var house: [Book: ExactDecimal] = [:]
    var keys: [APIKeyRecord] = []
    var settings: [String: String] = [:]
    /// The funding of the accounts nothing else in the set changes (a funding tick's: nearly all), computed
    /// and written by the commit (``FundingRun``). Funding is a tick's last change, so nothing in the set reads
    /// the balances it moves.
    var funding: FundingRun?

    /// Records `account` as this change set leaves it. `old` is the account as it was before the change set.
    mutating func touch(_ account: AccountState, previous old: AccountState) {
        if previous[account.uid] == nil { previous[account.uid] = old }
        accounts[account.uid] = account
    }

    /// The account as this change set leaves it so far: its copy when the set has touched it, otherwise the
    /// exchange's.
    func current(_ uid: String, in stored: [String: AccountState]) -> AccountState? {
        accounts[uid] ?? stored[uid]
    }
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
