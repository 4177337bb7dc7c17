import MarginEngine
import MarginStore

/// Builds the exchange's accounts from the rows a ``LedgerStore`` hands over at start-up: an account's rows of
/// other tables attach to it (rows of an unknown account are ignored), decimals are parsed from their text.
struct LedgerLoader: LedgerVisitor {
    var accounts: [String: AccountState]
    var fund: [String: ExactDecimal]
    var house: [String: ExactDecimal]
    var largestOrderID: Int64 = 0
    /// The accounts' uids in the order the store handed them over (uid order: ``LedgerVisitor``).
    var order: [String] = []

    mutating func account(_ record: AccountRecord) {
        order.append(record.uid)
        accounts[record.uid] = AccountState(
            record: record, balances: [:], positions: [:], openOrders: [:], pendingInterest: [:], accruedInterest: [:], leverage: [:])
    }

    mutating func balance(uid: String, ccy: String, cashBal: String) {
        accounts.modify(uid) { $0.balances[ccy] = ExactDecimal(cashBal) ?? .zero }
    }

    mutating func position(uid: String, instId: String, pos: String, avgPx: String, cTime: Int64, uTime: Int64) {
        accounts.modify(uid) {
            $0.positions[instId] = PositionState(
                pos: ExactDecimal(pos) ?? .zero, avgPx: ExactDecimal(avgPx) ?? .zero, cTime: cTime, uTime: uTime)
        }
    }

    mutating func openOrder(_ order: OrderRecord) {
        accounts.modify(order.uid) { $0.openOrders[order.ordId] = order }
    }

    mutating func interest(uid: String, ccy: String, pending: String, accrued: String) {
        accounts.modify(uid) {
            $0.pendingInterest[ccy] = ExactDecimal(pending) ?? .zero
            $0.accruedInterest[ccy] = ExactDecimal(accrued) ?? .zero
        }
    }

    mutating func accountSetting(key: String, value: String) {
        let parts = key.split(separator: ":").map(String.init)
        guard parts.count == 3 else { return }
        if parts[0] == "lever" { accounts.modify(parts[1]) { $0.leverage[parts[2]] = ExactDecimal(value) } }
        if parts[0] == "siu" { accounts.modify(parts[1]) { $0.chosenSpotInUse[parts[2]] = ExactDecimal(value) } }
    }

    mutating func insuranceFund(ccy: String, balance: String) { fund[ccy] = ExactDecimal(balance) ?? .zero }
    mutating func house(ccy: String, balance: String) { house[ccy] = ExactDecimal(balance) ?? .zero }
    mutating func largestOrderID(_ id: Int64) { largestOrderID = id }
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
